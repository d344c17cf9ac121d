"""Shared fixtures: paths, a real server on a free port, service availability."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from storage.calls import CallStore
from storage.db import make_engine
from voice_agent.app import create_app
from voice_agent.services import Services
from voice_agent.settings import Settings

# Tests place many calls from the same fixture numbers; the flood limit has its own test.
os.environ.setdefault("CALLS_PER_CALLER_LIMIT", "100000")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
AUDIO = FIXTURES / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_service(what: str, reason: str) -> None:
    """Skip with the reason, unless CI demands every service (REQUIRE_SERVICES=1)."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


@dataclass
class RunningServer:
    url: str
    settings: Settings
    app: FastAPI | None = None

    @property
    def auth_token(self) -> str:
        return self.settings.auth_token()

    @property
    def services(self) -> Services:
        assert self.app is not None
        return self.app.state.services


class ServerThread:
    """uvicorn in a thread, lifespan on, as `voice-agent serve` runs it: a real HTTP and
    WebSocket server the tests talk to over TCP. Give it settings (the app is built as
    `serve` builds it) or an app built another way."""

    def __init__(
        self,
        settings: Settings | None = None,
        app: FastAPI | None = None,
        startup_s: float = 120,
        graceful_s: float | None = None,  # open event streams are cut after this at exit
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app if app is not None else create_app(settings or Settings())
        self.startup_s = startup_s
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=graceful_s,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits this way when start-up fails
            self.server.run()

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("server stopped during start-up")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self.url
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("server-data")
    settings = Settings(data_dir=data, twilio_auth_token="test-auth-token-1234")
    thread = ServerThread(settings)
    with thread as url:
        yield RunningServer(url=url, settings=settings, app=thread.app)


def stored(server: RunningServer, call_sid: str) -> dict | None:
    return CallStore(make_engine(server.settings.resolved_database_url())).call_json(call_sid)


async def wait_stored(server: RunningServer, call_sid: str) -> dict:
    """The record is written as the socket closes; poll until it is final (a minute at least:
    a loaded machine settles a call's last turn and outcome slowly)."""
    call = None
    for _ in range(1200):
        call = await asyncio.to_thread(stored, server, call_sid)
        if call and call["status"] in ("completed", "failed"):
            return call
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_sid} was never finalized: {call}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Threads a test left blocked (a connection to a server a fault test blackholed) would
    keep the interpreter from exiting after the last test: the run would hang, silently,
    with every test passed. The interpreter's own exit step (joining the thread pools'
    workers) is run here with a bound; if it does not finish, the blocked threads are
    printed with where they are stuck, and the run exits with its own status."""
    import concurrent.futures.thread as pool_threads
    import faulthandler
    import sys

    closer = threading.Thread(target=pool_threads._python_exit, daemon=True)
    closer.start()
    closer.join(60)
    others = [t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
    for t in others:
        t.join(5)
    if not closer.is_alive() and not any(t.is_alive() for t in others):
        return
    print("\nthreads still blocked after the tests; exiting without waiting for them:")
    sys.stdout.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(config.stash.get(_EXIT_STATUS, 1))


_EXIT_STATUS = pytest.StashKey[int]()
