"""Settings from the environment, read once in the application factory and handed down."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from storage.secret_files import read_or_create

log = logging.getLogger(__name__)

DEV_TOKEN_FILE = "twilio-dev-auth-token"
DATABASE_FILE = "voice-agent.db"  # in the data dir, when DATABASE_URL is not set
DATABASE_URL_EXAMPLES = "postgresql+psycopg://user:password@host:5432/db or sqlite:////path/file.db"


class ConfigError(ValueError):
    """A setting that cannot work; the message says which one and what to set instead."""


def normalize_database_url(raw: str) -> str:
    """DATABASE_URL as SQLAlchemy takes it: postgres:// and postgresql:// (what hosting
    platforms hand out) mean PostgreSQL through psycopg 3, the driver installed here."""
    raw = raw.strip()
    try:
        given = url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL is not a database URL; expected e.g. {DATABASE_URL_EXAMPLES}"
        ) from None
    if url.get_backend_name() in ("postgres", "postgresql"):
        driver = url.get_driver_name() if "+" in url.drivername else "psycopg"
        url = url.set(drivername=f"postgresql+{driver}")
    try:
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ConfigError(
            f"DATABASE_URL: unknown database kind {url.drivername!r}; "
            f"expected e.g. {DATABASE_URL_EXAMPLES}"
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"DATABASE_URL: the driver for {url.drivername!r} is not installed ({exc.name}); "
            f"expected e.g. {DATABASE_URL_EXAMPLES}"
        ) from None
    if url.drivername == given.drivername:
        return raw
    return url.render_as_string(hide_password=False)


def shown_database_url(raw: str) -> str:
    """A database URL fit for a message: the password hidden."""
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def whisper_model_problem(model: str) -> str | None:
    """Why faster-whisper cannot load `model`, as far as this machine can tell without the
    network; None when it may (a model on the Hugging Face Hub is only known at load)."""
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "model.bin").is_file():
            return None
        return f"{model} is a directory without model.bin, not a CTranslate2 Whisper model"
    if model.startswith(("/", ".", "~")):
        return f"no model directory {model}"
    if "/" in model:  # a Hugging Face repository, e.g. Systran/faster-whisper-small.en
        return None
    from faster_whisper.utils import available_models  # heavy: only for a name to check

    names = available_models()
    if model in names:
        return None
    return (
        f"{model!r} is neither a faster-whisper model name ({', '.join(names)}) nor a "
        "CTranslate2 model directory"
    )


class Settings(BaseSettings):
    # hide_input_in_errors: an error about a setting never prints its value (tokens, keys)
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    data_dir: Path = Field(Path("data"), validation_alias=AliasChoices("VOICE_AGENT_DATA_DIR"))
    database_url: str | None = None
    redis_url: str | None = None
    public_base_url: str | None = None

    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str | None = None
    twilio_api_base_url: str | None = None  # a Twilio-compatible REST endpoint (tests)

    # Call recordings (only for businesses with recording_enabled), AES-GCM at rest under
    # this key: base64 of 32 bytes. Unset: a key made once in data_dir/recording.key.
    recording_key: str | None = Field(None, repr=False)

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"

    # Speech recognition: the bundled local Whisper, or OpenAI's transcription API (with
    # OPENAI_API_KEY and OPENAI_BASE_URL), local Whisper (WHISPER_MODEL) transcribing the
    # turns it fails. STT_MODEL: for whisper a faster-whisper model name or a CTranslate2
    # model directory (default: WHISPER_MODEL, else the bundled tiny.en); for openai the
    # model (default gpt-4o-mini-transcribe).
    stt_engine: Literal["whisper", "openai"] = "whisper"
    stt_model: str | None = None
    stt_timeout_s: float = Field(4.0, gt=0)  # a hosted turn's deadline, its retry included

    whisper_model: str | None = None  # name or path; default: bundled tiny.en
    # Two single-threaded workers: with fitted windows a turn takes ~80 ms on one core, and
    # two calls ending turns together are served side by side (bench/stt.py).
    whisper_threads: int = 1
    whisper_workers: int = 2
    whisper_beam_size: int = 5  # the 30 s window (turns over 20 s); short turns are greedy
    # Encode a caller turn in a window fitted to it instead of Whisper's 30 s: ~4x faster.
    whisper_fit_window: bool = True
    piper_voice: str | None = None  # .onnx path; default: bundled en_US-joe-medium
    piper_threads: int | None = None  # per sentence; None: onnxruntime's default (all cores)

    vad_aggressiveness: int = 1
    vad_gate_db: float = 4.0  # voice only this far over the line's noise floor; 0: off
    endpoint_hangover_ms: int = 600
    endpoint_short_hangover_ms: int = 350  # after words that read as a finished sentence
    barge_in_ms: int = 200
    silence_prompt_ms: int = 8000
    dispatcher_ring_s: int = 20
    max_bad_messages: int = 50
    # A signed socket that never says `start` holds a connection and a task: closed after this.
    stream_start_timeout_s: float = 10.0
    calls_per_caller_limit: int = 10  # per caller number, per 10 minutes: a flood stops here
    # SIGTERM drains: calls in progress may go on this long, then hear a goodbye and are stored.
    drain_timeout_s: float = 600.0
    # ...and the worker stays this long after its last call, for a stream whose webhook it
    # answered just before draining (the balancer may still send it here).
    drain_settle_s: float = 5.0
    worker_id: str | None = None  # the `worker` label on /metrics; default host:pid
    # How often each worker looks for calls a dead worker left open (storage/recovery).
    recovery_interval_s: float = 15.0

    @field_validator("recording_key")
    @classmethod
    def _recording_key_is_32_bytes(cls, value: str | None) -> str | None:
        if not value:
            return None
        from storage.recordings import _decode_key  # cryptography: loaded only when needed

        try:
            _decode_key(value.strip(), "RECORDING_KEY")  # the check the recorder makes
        except ValueError:
            raise ValueError(
                "a recording key is 32 bytes, base64-encoded (make one with "
                "`openssl rand -base64 32`); to read existing recordings, set the key they "
                "were written with"
            ) from None
        return value.strip()

    @field_validator("stt_engine")
    @classmethod
    def _hosted_needs_a_key(cls, value: str, info: ValidationInfo) -> str:
        if value == "openai" and not info.data.get("openai_api_key"):
            raise ValueError(
                "openai needs OPENAI_API_KEY (and OPENAI_BASE_URL for a server other than "
                "OpenAI's); set it, or STT_ENGINE=whisper for the local recognizer"
            )
        return value

    @field_validator("stt_model", "whisper_model")
    @classmethod
    def _whisper_model_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value or not value.strip():
            return None
        value = value.strip()
        # (an STT_ENGINE that failed its own check is not in `data`: its error says enough)
        engine = info.data.get("stt_engine", "openai")
        hosted = info.field_name == "stt_model" and engine != "whisper"
        problem = None if hosted else whisper_model_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def resolved_database_url(self) -> str:
        """DATABASE_URL (postgres:// accepted), else SQLite in the data dir. Raises
        ConfigError, saying what to set, for a URL SQLAlchemy cannot use."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    def auth_token(self) -> str:
        """The Twilio auth token; without one, a local development token kept in the data
        dir, so that even a laptop setup never accepts unsigned requests."""
        if self.twilio_auth_token:
            return self.twilio_auth_token
        path = self.data_dir / DEV_TOKEN_FILE
        token, created = read_or_create(path, lambda: secrets.token_hex(16))
        if created:
            log.warning(
                "TWILIO_AUTH_TOKEN is not set: generated a development token in %s; "
                "`voice-agent replay` signs with it. Set TWILIO_AUTH_TOKEN for real calls.",
                path,
            )
        return token
