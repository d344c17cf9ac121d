"""Shared fixtures: paths, a real server on a free port, service availability."""

from __future__ import annotations

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

from voice_agent.app import create_app
from voice_agent.settings import Settings

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
    app: object

    @property
    def auth_token(self) -> str:
        return self.settings.auth_token()


class ServerThread:
    """uvicorn in a thread: a real HTTP/WebSocket server the tests talk to over TCP."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("server-data")
    settings = Settings(data_dir=data, twilio_auth_token="test-auth-token-1234")
    with ServerThread(settings) as url:
        yield RunningServer(url=url, settings=settings, app=None)


def audio(name: str) -> Path:
    return AUDIO / name
