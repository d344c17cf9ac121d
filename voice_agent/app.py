"""The application factory: settings in, a FastAPI app out. Models load in the background
so that /healthz can say "loading" instead of the port staying closed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from media.tts import PiperSynthesizer
from media.vad import EndpointerConfig
from routing.local import LocalPolicy
from routing.policy import Policy, PolicyFactory
from routing.tools import ReceptionTools
from storage import db, recovery, retention
from storage.audit import AuditLog
from storage.businesses import BusinessStore
from storage.calls import CallStore, owner_alive
from storage.claims import ClaimStore
from storage.consent import ConsentStore
from storage.journal import Journal
from storage.live import LiveState
from storage.profiles import BusinessProfile
from storage.reception import ReceptionStore
from storage.recordings import KEY_FILE, RecordingStore, load_key
from storage.sms_log import SmsLog
from storage.tenant_queries import TenantQueries
from storage.users import UserStore
from storage.webhook_store import WebhookStore
from transcripts.engine import Transcriber, WhisperTranscriber
from transcripts.fallback import FallbackTranscriber
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.api import events as events_api
from voice_agent.api import router as api
from voice_agent.call.line_writer import LineWriter
from voice_agent.call.session import Engines, SessionConfig
from voice_agent.console import handoffs as console_api
from voice_agent.console import page as console
from voice_agent.drain import drain
from voice_agent.notify.crm_webhooks import WebhookDispatcher
from voice_agent.notify.notifier import Notifier
from voice_agent.notify.sms import SmsSender
from voice_agent.ops import log_redaction, metrics
from voice_agent.ops.metrics import Metrics
from voice_agent.ops.probe import Probe
from voice_agent.services import Services
from voice_agent.settings import ConfigError, Settings
from voice_agent.twilio import signatures, signed_form
from voice_agent.twilio import sms_webhook as twilio_sms
from voice_agent.twilio import voice_webhooks as twilio_webhooks
from voice_agent.twilio.line_state import TwilioState
from voice_agent.twilio.media_stream import media_stream

log = logging.getLogger(__name__)

EngineLoader = Callable[[Settings], Engines]
HEALTH_TIMEOUT_S = 3.0
IO_THREADS = 32


def load_engines(settings: Settings) -> Engines:
    stt = build_transcriber(settings)
    return Engines(
        transcriber=TranscriptionScheduler(stt, workers=settings.whisper_workers),
        synthesizer=PiperSynthesizer(settings.piper_voice, threads=settings.piper_threads),
    )


def build_transcriber(settings: Settings) -> Transcriber:
    """STT_ENGINE's recognizer. The hosted one is backed by local Whisper (WHISPER_MODEL),
    loaded now: a turn it fails is transcribed at once, not after a model load."""
    if settings.stt_engine == "openai":
        from transcripts.hosted import DEFAULT_MODEL, OpenAITranscriber

        hosted = OpenAITranscriber(
            settings.openai_api_key or "",  # the settings refuse openai without a key
            model=settings.stt_model or DEFAULT_MODEL,
            base_url=settings.openai_base_url,
            timeout_s=settings.stt_timeout_s,
        )
        return FallbackTranscriber(hosted, local_whisper(settings, "WHISPER_MODEL"))
    return local_whisper(settings, "STT_MODEL" if settings.stt_model else "WHISPER_MODEL")


def local_whisper(settings: Settings, setting: str) -> WhisperTranscriber:
    """faster-whisper with the model `setting` names (unset: the bundled tiny.en). A model
    that cannot be loaded stops start-up with a ConfigError naming the setting."""
    model = settings.stt_model if setting == "STT_MODEL" else settings.whisper_model
    try:
        return WhisperTranscriber(
            model,
            cpu_threads=settings.whisper_threads,
            beam_size=settings.whisper_beam_size,
            fit_window=settings.whisper_fit_window,
            workers=settings.whisper_workers,
        )
    except Exception as exc:
        if model is None:  # the bundled model: a broken install, not a setting
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        # huggingface_hub's first line: "Got: <the cause>" or a sentence, then advice
        reason = reason.removeprefix("Got: ").split(". ")[0][:200]
        what = (
            "faster-whisper cannot load that directory"
            if Path(model).expanduser().is_dir()
            else "not on this machine, and it could not be downloaded"
        )
        raise ConfigError(
            f"{setting}={model}: {what} ({reason}); set {setting} to a CTranslate2 model "
            "directory on this machine, or unset it for the bundled tiny.en"
        ) from exc


def policy_factory(settings: Settings) -> PolicyFactory:
    """The local receptionist, or the LLM one (falling back to it) when a key is set."""
    if not settings.openai_api_key:
        return LocalPolicy
    from openai import AsyncOpenAI

    from routing.llm import LLMPolicy

    # No client retries: a retry would spend the time the caller is waiting in silence.
    client = AsyncOpenAI(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url, max_retries=0
    )

    def make(profile: BusinessProfile, tools: ReceptionTools) -> Policy:
        fallback = LocalPolicy(profile, tools)
        return LLMPolicy(profile, tools, client, settings.openai_model, fallback=fallback)

    return make


def build_services(settings: Settings) -> Services:
    """Every store and helper the service uses, built once, on one engine."""
    engine = db.make_engine(settings.resolved_database_url())
    live = LiveState(settings.redis_url, rate_limit=settings.calls_per_caller_limit)
    calls = CallStore(engine)
    consent, sms_log, webhooks = ConsentStore(engine), SmsLog(engine), WebhookStore(engine)
    sms = SmsSender(
        consent,
        sms_log,
        settings.twilio_account_sid,
        settings.twilio_auth_token,  # not auth_token(): the dev token must never reach Twilio
        settings.twilio_api_base_url,
    )
    return Services(
        settings=settings,
        db=engine,
        calls=calls,
        businesses=BusinessStore(engine),
        reception=ReceptionStore(engine),
        users=UserStore(engine),
        audit=AuditLog(engine),
        consent=consent,
        sms_log=sms_log,
        webhooks=webhooks,
        queries=TenantQueries(engine),
        claims=ClaimStore(engine),
        recordings=recording_store(settings, engine),
        lines=LineWriter(calls.append_line),
        notifier=Notifier(sms=sms, webhooks=WebhookDispatcher(webhooks), bus=live.bus),
        live=live,
        journal=Journal(settings.data_dir / "journal"),
        metrics=Metrics(settings.worker_id),
        policy_factory=policy_factory(settings),
        session_config=SessionConfig(
            vad_aggressiveness=settings.vad_aggressiveness,
            vad_gate_db=settings.vad_gate_db,
            endpointer=EndpointerConfig(hangover_ms=settings.endpoint_hangover_ms),
            short_hangover_ms=settings.endpoint_short_hangover_ms,
            barge_in_ms=settings.barge_in_ms,
            silence_prompt_ms=settings.silence_prompt_ms,
        ),
    )


async def replay_journal(services: Services, every_s: float = 30.0) -> None:
    """Calls finished while the database was down are stored once it is back."""
    while True:
        if services.journal.pending():
            try:
                stored = await asyncio.to_thread(services.journal.replay, services.calls)
            except Exception as exc:  # still down: the files wait for the next round
                log.warning("journal not replayed yet: %s", type(exc).__name__)
                stored = 0
            if stored:
                log.info("stored %d journaled call(s)", stored)
        await asyncio.sleep(every_s)


async def look_after_calls(services: Services) -> None:
    """Every recovery interval: this worker's beat (in Redis, for workers on other hosts),
    heartbeats for its live calls (so no other worker takes a long, quiet call for a
    crashed one), and calls a dead worker left open closed from what it stored (its pid
    gone on this host, or its beat lapsed elsewhere, and the call quiet for 3 intervals)."""
    every_s = services.settings.recovery_interval_s
    owner = services.calls.owner
    quiet = timedelta(seconds=3 * every_s)

    def alive(other: str) -> bool:  # in a worker thread: Redis is asked synchronously
        return owner_alive(other, services.live.beats.alive)

    while True:
        # Neither raises: Redis trouble is logged, and each is bounded in time.
        await services.live.beats.beat(owner, 3 * every_s)
        await services.live.registry.refresh(list(services.sessions))
        try:
            await asyncio.to_thread(services.calls.touch, *services.sessions)
            done = await asyncio.to_thread(
                recovery.recover,
                services.db,
                services.recordings,
                owner_alive=alive,
                owner_quiet=quiet,
            )
            for call_sid in done["calls_closed"]:
                await services.live.registry.remove(call_sid)
        except Exception as exc:  # the database is down: try again next round
            log.warning("call heartbeat/recovery skipped: %s", type(exc).__name__)
        await asyncio.sleep(every_s)


def _counts(done: dict) -> dict:
    return {k: len(v) if isinstance(v, list) else v for k, v in done.items()}


def recording_store(settings: Settings, engine: Engine) -> RecordingStore:
    """Recordings live under data_dir/recordings, encrypted with RECORDING_KEY or, without
    it, a key generated once into data_dir/recording.key (0600). A bad key stops start-up."""
    key = load_key(settings.recording_key, settings.data_dir / KEY_FILE)
    return RecordingStore(engine, settings.data_dir / "recordings", key)


def create_app(settings: Settings | None = None, loader: EngineLoader = load_engines) -> FastAPI:
    settings = settings or Settings()
    services = build_services(settings)

    async def load() -> None:
        try:
            services.engines = await asyncio.to_thread(loader, settings)
            services.ready.set()
            log.info("models loaded; ready for calls")
        except Exception as exc:
            services.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("start-up failed")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log_redaction.install()  # after uvicorn has configured its loggers
        # asyncio's default is cores + 4 threads (6 here): a few database calls stuck on an
        # unreachable server would leave none for storing finished calls or the journal.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io")
        )
        # The schema first: webhooks need it before any model has loaded.
        await asyncio.to_thread(db.upgrade, services.db)
        services.notifier.bind(asyncio.get_running_loop())
        services.notifier.webhooks.start()
        background = [
            asyncio.create_task(load()),
            asyncio.create_task(retention.run_daily(services.db, services.recordings)),
            asyncio.create_task(services.metrics.watch_loop()),
            asyncio.create_task(replay_journal(services)),
            asyncio.create_task(look_after_calls(services)),
        ]
        yield
        for task in background:
            task.cancel()
        await services.live.aclose()
        await services.notifier.drain()
        await services.notifier.webhooks.aclose()
        if services.ready.is_set():
            services.engines.transcriber.close()
        services.lines.close()
        services.db.dispose()

    app = FastAPI(title="Voice agent", lifespan=lifespan)
    app.state.services = services
    app.state.twilio = TwilioState(signatures.SignatureChecker(settings.auth_token()))
    app.add_exception_handler(signed_form.InvalidSignature, signed_form.refuse)
    app.include_router(twilio_webhooks.router)
    app.include_router(twilio_sms.router)
    app.include_router(api.router)
    app.include_router(metrics.router)
    app.include_router(events_api.router)
    app.include_router(console_api.router)
    app.include_router(console.router)
    app.mount(console.STATIC_PATH, console.static_files(), name="console-static")
    app.add_api_websocket_route("/twilio/media-stream", media_stream)

    app.state.drain = lambda: drain(services)  # the server calls it on SIGTERM (cli/serve)

    @app.get("/livez")
    async def livez() -> JSONResponse:
        """Liveness: the process serves requests. Stays 200 while draining, so an
        orchestrator does not kill a worker that is letting its calls finish."""
        mine = {"worker": services.metrics.worker, "draining": services.draining}
        return JSONResponse({"status": "alive", **mine})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """For the balancer: send this worker new calls. Unlike /healthz it leaves the
        database out: an outage hits every worker alike, and a worker that answers the
        webhook with an apology (and keeps calls in progress going, their records
        journaled) serves callers better than a balancer with no server left."""
        if services.draining:
            return JSONResponse({"status": "draining", "calls": len(services.sessions)}, 503)
        if services.load_error or not services.ready.is_set():
            return JSONResponse({"status": "failed" if services.load_error else "loading"}, 503)
        return JSONResponse({"status": "ready", "worker": services.metrics.worker})

    db_probe = Probe(lambda: db.ping(services.db), "database")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Readiness: send this worker new calls."""
        if services.draining:
            return JSONResponse({"status": "draining", "calls": len(services.sessions)}, 503)
        if services.load_error:
            return JSONResponse({"status": "failed", "error": services.load_error}, 503)
        if not services.ready.is_set():
            return JSONResponse({"status": "loading"}, 503)
        try:
            # Bounded, on a thread of its own: a partitioned database must neither make the
            # health check hang nor hold a thread the calls (or the exit) wait for.
            await db_probe.run(HEALTH_TIMEOUT_S)
        except Exception as exc:
            error = str(exc)[:200] or type(exc).__name__
            return JSONResponse({"status": "database unreachable", "error": error}, 503)
        active = len(await services.live.registry.active())
        return JSONResponse({"status": "ok", "active_calls": active})

    return app
