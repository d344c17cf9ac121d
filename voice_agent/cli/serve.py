"""`voice-agent serve [--workers N]`: uvicorn, with SIGTERM draining calls instead of
closing their streams (uvicorn alone closes every WebSocket at once with 1012).

With `--workers N` a supervisor holds the socket and runs N worker processes on it, each a
whole service; it restarts a worker that dies and, on SIGTERM, passes it to every worker and
waits for all of them to drain. Several workers need REDIS_URL: the webhook, the stream and
the console of one call may reach different workers."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from voice_agent.app import create_app
from voice_agent.ops import log_redaction
from voice_agent.settings import ConfigError, Settings

log = logging.getLogger(__name__)

_app: FastAPI | None = None  # the app this process serves, for its server's drain


def app_from_env() -> FastAPI:
    """The factory each worker process calls: settings from the environment."""
    global _app
    if not logging.getLogger().handlers:  # a worker process: spawned without the CLI's set-up
        logging.basicConfig(level=logging.INFO, format=log_redaction.LOG_FORMAT)
        log_redaction.install()
    _app = create_app(Settings())
    return _app


class DrainingServer(uvicorn.Server):
    """The first SIGTERM or SIGINT drains (voice_agent.drain), then exits as uvicorn does;
    a second one exits at once (streams still open are closed and stored)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _draining: asyncio.Task[Any] | None = None

    async def serve(self, sockets: list[Any] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if _app is None or self._loop is None or self._draining is not None or self.should_exit:
            super().handle_exit(sig, frame)
            return
        log.warning("%s: draining before exit", signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await _app.state.drain()  # type: ignore[union-attr]
        except Exception:
            log.exception("drain failed; exiting")
        self.should_exit = True


class _DrainingProcess(Process):
    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class _Supervisor(Multiprocess):
    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = _DrainingProcess(self.config, self.sockets)
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        # uvicorn's own restart makes a plain Process; ours must drain too.
        for idx, process in enumerate(self.processes):
            if not isinstance(process, _DrainingProcess) or self.should_exit.is_set():
                continue
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # would fail the same way again
                log.error("worker process %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            log.warning(
                "worker process %s died (exit code %s); starting another",
                process.pid,
                process.exitcode,
            )
            replacement = _DrainingProcess(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement


def serve(host: str, port: int, workers: int, settings: Settings) -> None:
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            "--workers above 1 needs REDIS_URL: stream tokens, the live feed and rate limits "
            "are shared through it (e.g. REDIS_URL=redis://127.0.0.1:6379/0)"
        )
    config = uvicorn.Config(
        "voice_agent.cli.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ws_max_size=1 << 20,
        # Media frames are 160 bytes of mu-law in base64: deflate buys nothing and cost ~8%
        # of the event loop when a client negotiated it (bench/load.py media).
        ws_per_message_deflate=False,
        # Drain (voice_agent.drain) has already let every call end; this bounds only
        # what is left then, e.g. an open console's live feed.
        timeout_graceful_shutdown=5,
    )
    if workers <= 1:
        DrainingServer(config).run()
        return
    sock = config.bind_socket()
    _Supervisor(config, sockets=[sock]).run()
