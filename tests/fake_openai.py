"""A fake OpenAI chat-completions server: real HTTP on a free port (uvicorn in a thread) that
plays a script of replies in OpenAI's wire format, streamed or not, including the failures a
real deployment sees (HTTP 500, stalls, dropped connections, broken streams). It records every
request so tests can check what the model was sent."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

GATE_LIMIT_S = 10.0  # a gate nobody opens: give up so a broken test fails instead of hanging


@dataclass
class Text:
    """Streamed as the given pieces. With `gate`, the last piece waits until it is set."""

    pieces: tuple[str, ...]
    gate: threading.Event | None = None

    def __init__(self, *pieces: str, gate: threading.Event | None = None) -> None:
        self.pieces, self.gate = pieces, gate


@dataclass
class Call:
    name: str
    arguments: str | dict[str, Any] = field(default_factory=dict)  # str: sent verbatim
    id: str | None = None

    @property
    def raw(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class ToolCalls:
    """Optional text, then the calls with their arguments in 6-character pieces, the way
    OpenAI streams them. With `gate`, the stream waits after the first piece of arguments."""

    calls: tuple[Call, ...]
    text: str = ""
    gate: threading.Event | None = None

    def __init__(self, *calls: Call, text: str = "", gate: threading.Event | None = None):
        self.calls, self.text, self.gate = calls, text, gate


@dataclass
class Error:
    status: int = 500
    message: str = "The server had an error while processing your request."


@dataclass
class Stall:
    """Headers (and the role chunk) at once, then nothing for `seconds`, then some text.
    With before_headers, the wait comes before the response starts; with `first`, those
    pieces are streamed before the wait (a model that starts a sentence and stops); with
    `keepalive`, an empty chunk every that many seconds during the wait (no token)."""

    seconds: float
    before_headers: bool = False
    first: tuple[str, ...] = ()
    keepalive: float | None = None


@dataclass
class Drop:
    """Streams the pieces, then the connection breaks (no finish, no [DONE])."""

    pieces: tuple[str, ...]

    def __init__(self, *pieces: str) -> None:
        self.pieces = pieces


@dataclass
class Garbage:
    """Streams the pieces, then an event whose data isn't JSON."""

    pieces: tuple[str, ...]

    def __init__(self, *pieces: str) -> None:
        self.pieces = pieces


Reply = Text | ToolCalls | Error | Stall | Drop | Garbage


class _Dropped(Exception):
    """Raised inside a streaming body: uvicorn then cuts the connection mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Dropped))


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.aborted = threading.Event()  # set when a client went away mid-stream
        self.gate_timed_out = False
        self._script: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", timeout_graceful_shutdown=1)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    # -- test side ------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.aborted.clear()
        self.gate_timed_out = False

    @property
    def unplayed(self) -> int:
        with self._lock:
            return len(self._script)

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key="test", max_retries=0)

    def __enter__(self) -> FakeOpenAI:
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())  # drops are on purpose
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # -- server side ----------------------------------------------------------------------

    async def _complete(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            reply = self._script.popleft() if self._script else Error(500, "no scripted reply")
        if isinstance(reply, Error):
            error = {"message": reply.message, "type": "server_error", "param": None, "code": None}
            return JSONResponse({"error": error}, status_code=reply.status)
        if isinstance(reply, Stall) and reply.before_headers:
            await self._pause(request, reply.seconds)
        if not body.get("stream"):
            return JSONResponse(self._completion(body, reply))
        return StreamingResponse(self._events(request, body, reply), media_type="text/event-stream")

    async def _events(
        self, request: Request, body: dict[str, Any], reply: Reply
    ) -> AsyncIterator[str]:
        chunk = _Chunker(f"chatcmpl-{next(self._ids)}", body.get("model", "fake"))
        complete = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for event in self._play(request, chunk, reply):
                yield event
            complete = True
        finally:
            if not complete:
                self.aborted.set()

    async def _play(self, request: Request, chunk: _Chunker, reply: Reply) -> AsyncIterator[str]:
        if isinstance(reply, Text):
            for i, piece in enumerate(reply.pieces):
                if reply.gate is not None and i == len(reply.pieces) - 1:
                    await self._pause(request, GATE_LIMIT_S, reply.gate)
                yield chunk({"content": piece})
            yield chunk({}, "stop") + "data: [DONE]\n\n"
        elif isinstance(reply, ToolCalls):
            for word in _words(reply.text):
                yield chunk({"content": word})
            for index, call in enumerate(reply.calls):
                head, *pieces = _tool_call_chunks(chunk, index, call, next(self._ids))
                yield head
                for n, piece in enumerate(pieces):
                    yield piece
                    if reply.gate is not None and index == 0 and n == 0:
                        await self._pause(request, GATE_LIMIT_S, reply.gate)
            yield chunk({}, "tool_calls") + "data: [DONE]\n\n"
        elif isinstance(reply, Stall):
            for piece in reply.first:
                yield chunk({"content": piece})
            if reply.keepalive:
                until = time.monotonic() + reply.seconds
                while time.monotonic() < until:
                    await self._pause(request, reply.keepalive)
                    yield chunk({"content": ""})
            else:
                await self._pause(request, reply.seconds)
            yield chunk({"content": "Sorry for the wait."}) + chunk({}, "stop") + "data: [DONE]\n\n"
        elif isinstance(reply, Drop | Garbage):
            for piece in reply.pieces:
                yield chunk({"content": piece})
            if isinstance(reply, Drop):
                raise _Dropped()
            yield 'data: {"id": "broken", "choices": [{"index": 0, "del\n\n'

    async def _pause(
        self, request: Request, seconds: float, gate: threading.Event | None = None
    ) -> None:
        """Wait for the gate or the time, ending early when the client hangs up (uvicorn
        does not cancel a streaming body for that)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if gate is not None and gate.is_set():
                return
            if await request.is_disconnected():
                raise _Dropped()
            await asyncio.sleep(0.005)
        if gate is not None:
            self.gate_timed_out = True

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        """The non-streamed form of a Text or ToolCalls reply."""
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if isinstance(reply, Text):
            message["content"] = "".join(reply.pieces)
        elif isinstance(reply, ToolCalls):
            message["content"] = reply.text or None
            message["tool_calls"] = [
                {"id": c.id or f"call_{next(self._ids)}", "type": "function",
                 "function": {"name": c.name, "arguments": c.raw}}
                for c in reply.calls
            ]  # fmt: skip
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip


class _Chunker:
    """`data: {chat.completion.chunk}` events of one response."""

    def __init__(self, completion_id: str, model: str) -> None:
        self.id, self.model, self.created = completion_id, model, int(time.time())

    def __call__(self, delta: dict[str, Any], finish: str | None = None) -> str:
        data = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }  # fmt: skip
        return f"data: {json.dumps(data)}\n\n"


def _tool_call_chunks(chunk: _Chunker, index: int, call: Call, n: int) -> list[str]:
    """The first chunk names the call (id, type, name, empty arguments); the arguments follow
    in pieces carrying only the index."""
    head = {"index": index, "id": call.id or f"call_fake{n}", "type": "function",
            "function": {"name": call.name, "arguments": ""}}  # fmt: skip
    events = [chunk({"tool_calls": [head]})]
    raw = call.raw
    for start in range(0, len(raw), 6):
        piece = {"index": index, "function": {"arguments": raw[start : start + 6]}}
        events.append(chunk({"tool_calls": [piece]}))
    return events


def _words(text: str) -> list[str]:
    """'Let me check.' -> ['Let', ' me', ' check.'] (how models stream text)."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- for the test modules: bind the fixtures at module level to use them, e.g.
#    `openai_server, fake = fake_openai.openai_server, fake_openai.fake` -------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()  # one server per module, a fresh script per test
    return openai_server


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results a recorded request sent back to the model, decoded."""
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]
