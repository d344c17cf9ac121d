"""The app as create_app builds it, with its live bus wrapped in one that counts its
subscribers, a uvicorn server for it, and a small Server-Sent Events reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from storage.live import EventBus
from tests.conftest import ServerThread
from voice_agent.app import EngineLoader, create_app, load_engines
from voice_agent.settings import Settings


class TrackingBus:
    """The app's bus, with a count of open subscriptions per business and a record of what
    was published (read from the test thread; the server thread writes)."""

    def __init__(self, inner: EventBus) -> None:
        self.inner = inner
        self.open: Counter[int] = Counter()  # subscriptions open now
        self.opened: Counter[int] = Counter()  # subscriptions ever opened
        self.published: list[tuple[int, dict[str, Any]]] = []

    def publish(self, business_id: int, event: dict[str, Any]) -> None:
        self.published.append((business_id, event))
        self.inner.publish(business_id, event)

    async def subscribe(self, business_id: int) -> AsyncIterator[dict[str, Any]]:
        self.open[business_id] += 1
        self.opened[business_id] += 1
        try:
            async for event in self.inner.subscribe(business_id):
                yield event
        finally:
            self.open[business_id] -= 1

    def events_of(self, call_sid: str) -> list[dict[str, Any]]:
        return [e for _, e in self.published if e.get("call_sid") == call_sid]


def console_app(settings: Settings, loader: EngineLoader = load_engines) -> FastAPI:
    """The app `serve` runs; its bus (the live feed's and the notifier's) is tracked."""
    app = create_app(settings, loader=loader)
    services = app.state.services
    services.live.bus = services.notifier.bus = TrackingBus(services.live.bus)
    return app


def tracking_bus(app: FastAPI) -> TrackingBus:
    bus = app.state.services.live.bus
    assert isinstance(bus, TrackingBus)
    return bus


class ConsoleServer(ServerThread):
    """The server with the console; open event streams are given 2 s at shutdown (see
    events_api on timeout_graceful_shutdown)."""

    def __init__(self, app: FastAPI, startup_s: float = 180) -> None:
        super().__init__(app=app, startup_s=startup_s, graceful_s=2)


@dataclass
class Frame:
    event: str | None = None
    data: dict[str, Any] | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class SseClient:
    """GET /api/events over a real connection; `frame()` reads the next frame."""

    def __init__(
        self, url: str, token: str | None = None, params: dict[str, str] | None = None
    ) -> None:
        self.url, self.params = url, params or {}
        self.headers = {"Accept": "text/event-stream"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self._stack = contextlib.AsyncExitStack()
        self.response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None

    async def __aenter__(self) -> SseClient:
        client = await self._stack.enter_async_context(
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))
        )
        request = client.stream(
            "GET", f"{self.url}/api/events", headers=self.headers, params=self.params
        )
        self.response = await self._stack.enter_async_context(request)
        self._lines = self.response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stack.aclose()

    async def frame(self, timeout_s: float = 10) -> Frame:
        return await asyncio.wait_for(self._frame(), timeout_s)

    async def _frame(self) -> Frame:
        assert self._lines is not None
        frame, data = Frame(), []
        async for line in self._lines:
            if line == "":
                if data:
                    frame.data = json.loads("\n".join(data))
                if data or frame.comments or frame.retry is not None:
                    return frame
                continue
            if line.startswith(":"):
                frame.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                frame.event = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                frame.retry = int(value)
        raise EOFError("the stream ended")

    async def event(self, timeout_s: float = 10) -> Frame:
        """The next frame that carries an event (keep-alive comments are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self.frame(max(0.01, deadline - time.monotonic()))
            if frame.event is not None:
                return frame


async def wait_for(check: Any, what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
