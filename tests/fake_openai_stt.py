"""A fake OpenAI transcription server: real HTTP on a free port (tests/servers.py) speaking
the wire protocol of `POST /v1/audio/transcriptions`: a multipart form in, and with
`stream=true` Server-Sent Events out (`transcript.text.delta`, then `transcript.text.done`),
with token logprobs when `include[]=logprobs` was asked. It plays a script of replies,
failures included (HTTP errors, stalls), and records what each request carried."""

from __future__ import annotations

import asyncio
import collections
import io
import json
import threading
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers import AppThread


@dataclass
class Transcript:
    """Streamed as one delta per token, then (unless `done` is False) the done event, whose
    text is `done_text` when given, else the tokens joined."""

    tokens: tuple[tuple[str, float], ...]  # (token, logprob)
    done: bool = True
    done_text: str | None = None

    @classmethod
    def of(cls, text: str, logprob: float = -0.01, **kwargs: Any) -> Transcript:
        """Each word a token ('Hello', ' there.'), all equally sure."""
        words = text.split(" ")
        tokens = [(w if i == 0 else " " + w, logprob) for i, w in enumerate(words)]
        return cls(tuple(tokens), **kwargs)

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.tokens)


@dataclass
class Error:
    status: int = 500
    message: str = "The server had an error while processing your request."


@dataclass
class Stall:
    """Headers at once (or, with before_headers, nothing at all), then nothing for `seconds`,
    then the transcript."""

    seconds: float
    transcript: Transcript = field(default_factory=lambda: Transcript.of("Too late."))
    before_headers: bool = False


Reply = Transcript | Error | Stall


@dataclass
class Received:
    fields: dict[str, list[str]]  # every form field but the file
    filename: str
    content_type: str
    audio: bytes
    authorization: str

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def wav(self) -> tuple[wave._wave_params, np.ndarray]:
        """The uploaded file read as a WAV: its parameters and its samples."""
        with wave.open(io.BytesIO(self.audio), "rb") as w:
            params = w.getparams()
            frames = w.readframes(params.nframes)
        return params, np.frombuffer(frames, dtype="<i2")


class FakeTranscriptionServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.hung_up = threading.Event()  # a client went away before its reply was complete
        self._script: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        route = Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])
        self._app = AppThread(Starlette(routes=[route]))
        self.url = self._app.url + "/v1"  # what OPENAI_BASE_URL would be

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.hung_up.clear()

    def __enter__(self) -> FakeTranscriptionServer:
        self._app.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._app.__exit__(*exc)

    async def _transcribe(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        assert isinstance(upload, UploadFile), "no file in the form"
        fields: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        received = Received(
            fields=fields,
            filename=upload.filename or "",
            content_type=upload.content_type or "",
            audio=await upload.read(),
            authorization=request.headers.get("authorization", ""),
        )
        with self._lock:
            self.requests.append(received)
            reply = self._script.popleft() if self._script else Error(500, "no scripted reply")
        if isinstance(reply, Error):
            error = {"message": reply.message, "type": "server_error", "param": None, "code": None}
            return JSONResponse({"error": error}, status_code=reply.status)
        if (
            isinstance(reply, Stall)
            and reply.before_headers
            and not await self._wait(request, reply.seconds)
        ):
            return Response(status_code=499)  # nobody is listening any more
        transcript = reply.transcript if isinstance(reply, Stall) else reply
        logprobs = "logprobs" in fields.get("include[]", [])
        # Like OpenAI: whisper-1 does not stream, whatever `stream` says.
        if received.field("stream") != "true" or received.field("model") == "whisper-1":
            body: dict[str, Any] = {"text": transcript.text}
            if logprobs:
                body["logprobs"] = [_logprob(t, lp) for t, lp in transcript.tokens]
            return JSONResponse(body)
        stall = reply.seconds if isinstance(reply, Stall) and not reply.before_headers else 0.0
        events = self._events(request, transcript, logprobs, stall)
        return StreamingResponse(events, media_type="text/event-stream")

    async def _events(
        self, request: Request, transcript: Transcript, logprobs: bool, stall: float
    ) -> AsyncIterator[str]:
        complete = False
        try:
            if stall and not await self._wait(request, stall):
                return
            for token, lp in transcript.tokens:
                delta: dict[str, Any] = {"type": "transcript.text.delta", "delta": token}
                if logprobs:
                    delta["logprobs"] = [_logprob(token, lp)]
                yield _sse(delta)
            if transcript.done:
                text = transcript.text if transcript.done_text is None else transcript.done_text
                done: dict[str, Any] = {"type": "transcript.text.done", "text": text}
                if logprobs:
                    done["logprobs"] = [_logprob(t, lp) for t, lp in transcript.tokens]
                done["usage"] = {"type": "tokens", "input_tokens": 20,
                                 "output_tokens": len(transcript.tokens),
                                 "total_tokens": 20 + len(transcript.tokens)}  # fmt: skip
                yield _sse(done)
            complete = True
        finally:
            if not complete:
                self.hung_up.set()

    async def _wait(self, request: Request, seconds: float) -> bool:
        """Sleep, unless the client hangs up first (False)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                self.hung_up.set()
                return False
            await asyncio.sleep(0.01)
        return True


def _logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


# -- for test modules: `stt_server, stt = fake_openai_stt.stt_server, fake_openai_stt.stt` --


@pytest.fixture(scope="module")
def stt_server() -> Iterator[FakeTranscriptionServer]:
    with FakeTranscriptionServer() as server:
        yield server


@pytest.fixture
def stt(stt_server: FakeTranscriptionServer) -> FakeTranscriptionServer:
    stt_server.reset()  # one server per module, a fresh script per test
    return stt_server
