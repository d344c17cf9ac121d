"""Settings from the environment, read once in the application factory and handed down."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

DEV_TOKEN_FILE = "twilio-dev-auth-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

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

    whisper_model: str | None = None  # name or path; default: bundled tiny.en
    # Two single-threaded workers: with fitted windows a turn takes ~80 ms on one core, and
    # two calls ending turns together are served side by side (bench/stt.py).
    whisper_threads: int = 1
    whisper_workers: int = 2
    whisper_beam_size: int = 5  # the 30 s window (turns over 20 s); short turns are greedy
    # Encode a caller turn in a window fitted to it instead of Whisper's 30 s: ~4x faster.
    whisper_fit_window: bool = True
    piper_voice: str | None = None  # .onnx path; default: bundled en_US-joe-medium

    vad_aggressiveness: int = 2
    endpoint_hangover_ms: int = 500
    barge_in_ms: int = 200
    silence_prompt_ms: int = 8000
    dispatcher_ring_s: int = 20
    max_bad_messages: int = 50
    # A signed socket that never says `start` holds a connection and a task: closed after this.
    stream_start_timeout_s: float = 10.0
    calls_per_caller_limit: int = 10  # per caller number, per 10 minutes: a flood stops here

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'voice-agent.db').resolve()}"

    def auth_token(self) -> str:
        """The Twilio auth token; without one, a local development token kept in the data
        dir, so that even a laptop setup never accepts unsigned requests."""
        if self.twilio_auth_token:
            return self.twilio_auth_token
        path = self.data_dir / DEV_TOKEN_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        path.touch(mode=0o600)
        path.write_text(token)
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: generated a development token in %s; "
            "`voice-agent replay` signs with it. Set TWILIO_AUTH_TOKEN for real calls.",
            path,
        )
        return token
