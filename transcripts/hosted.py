"""Speech to text by OpenAI's transcription API: one streamed request per caller turn.

The turn goes up as a 16-bit WAV at 8 kHz. Every caller turn comes off an 8 kHz phone
line and reaches the engine upsampled to 16 kHz, so 8 kHz carries all of it in half the
bytes (a 6 s turn: 96 KB instead of 192 KB): upload time that every turn would pay.

The call's vocabulary goes as `prompt`, and the tokens' log probabilities (`include[]=
logprobs`) become the words' probabilities, as Whisper's do (transcripts/heard.py).

A caller is waiting in silence, so a turn has one deadline (`timeout_s`) for everything,
and at most one retry inside it: a connection that broke or a 5xx, when time is left.
Anything else raises TranscriptionFailed saying what went wrong; transcripts/fallback.py
then has local Whisper transcribe the turn."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import math
import threading
import wave
from typing import Any

import numpy as np
import openai
from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent

from media.resample import PHONE_RATE, WHISPER_RATE, to_int16, to_phone
from transcripts.heard import Expect, Heard, HeardWord, heard_from_tokens

DEFAULT_MODEL = "gpt-4o-mini-transcribe"
MIN_AUDIO_S = 0.1  # the API refuses shorter files; nothing is said in that anyway
RETRY_MIN_SHARE = 0.25  # a retry with less of the turn's time left would only be cut off
NO_LOGPROBS = ("whisper-1",)  # answers JSON whatever `stream` says, and has no logprobs

# What the caller was just asked for, as text the model reads as said before the audio.
EXPECT_PROMPTS = {
    "letters": "The caller spells a word letter by letter, e.g. P-A-T-E-L.",
    "digits": "The caller gives a phone number, e.g. 555-867-5309.",
}


class TranscriptionFailed(RuntimeError):
    """The hosted recognizer gave no transcript for a turn; the message says why."""


class OpenAITranscriber:
    """A Transcriber on OpenAI's (or a compatible server's) /audio/transcriptions.

    Requests run on a private event loop: a turn's deadline then cancels the request and
    closes its connection wherever it is (a stream that trickles bytes defeats a read
    timeout), and connections are kept alive between turns, sparing a TLS handshake each.
    """

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout_s: float = 4.0,
        retries: int = 1,
        send_rate: int = PHONE_RATE,
    ) -> None:
        if send_rate not in (PHONE_RATE, WHISPER_RATE):
            raise ValueError(f"send_rate is {PHONE_RATE} or {WHISPER_RATE}, not {send_rate}")
        self.model, self.timeout_s, self.retries = model, timeout_s, retries
        self.send_rate = send_rate
        # No client retries: the turn's own retry is bounded by the turn's deadline.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self.where = f"{model} at {str(self._client.base_url).rstrip('/')}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="stt-hosted", daemon=True
        )
        self._thread.start()

    def transcribe(
        self, audio: np.ndarray, prompt: str | None = None, expect: Expect | None = None
    ) -> Heard:
        """Blocking, from any thread. Raises TranscriptionFailed. A spelling or a number
        asked for is written into the prompt, as the model's own guide suggests."""
        if len(audio) < MIN_AUDIO_S * WHISPER_RATE:
            return Heard("")
        if expect is not None:
            prompt = f"{prompt or ''} {EXPECT_PROMPTS[expect]}".strip()
        turn = asyncio.run_coroutine_threadsafe(
            self._turn(wav_bytes(audio, self.send_rate), prompt), self._loop
        )
        try:
            # The coroutine keeps its own deadline; this only guards against a loop that
            # stopped answering.
            return turn.result(timeout=self.timeout_s + 5)
        except concurrent.futures.TimeoutError:
            turn.cancel()
            raise TranscriptionFailed(f"{self.where}: no transcript in time") from None

    def close(self) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _turn(self, wav: bytes, prompt: str | None) -> Heard:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        attempt = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    return await self._request(wav, prompt)
            except Exception as exc:
                attempt += 1
                left = deadline - loop.time()
                if (
                    attempt > self.retries
                    or not _transient(exc)
                    or left < self.timeout_s * RETRY_MIN_SHARE
                ):
                    reason = self._reason(exc, attempt)
                    raise TranscriptionFailed(f"{self.where}: {reason}") from exc

    async def _request(self, wav: bytes, prompt: str | None) -> Heard:
        logprobs = self.model not in NO_LOGPROBS
        stream = await self._client.audio.transcriptions.create(
            file=("turn.wav", wav, "audio/wav"),
            model=self.model,
            language="en",
            prompt=prompt or openai.omit,
            include=["logprobs"] if logprobs else openai.omit,
            response_format="json",
            stream=True,
        )
        async with stream:
            if not stream.response.headers.get("content-type", "").startswith("text/event-stream"):
                # A model that does not stream (whisper-1) answers with one JSON object.
                reply = json.loads(await stream.response.aread())
                return Heard(str(reply.get("text", "")).strip())
            deltas: list[str] = []
            tokens: list[Any] = []
            done: TranscriptionTextDoneEvent | None = None
            async for event in stream:
                if isinstance(event, TranscriptionTextDeltaEvent):
                    deltas.append(event.delta)
                    tokens.extend(event.logprobs or ())
                elif isinstance(event, TranscriptionTextDoneEvent):
                    done = event
                    break
        text = done.text if done is not None and done.text else "".join(deltas)
        if done is not None and done.logprobs:
            tokens = list(done.logprobs)  # the whole transcript's, matching its text
        return Heard(text.strip(), words_from_logprobs(tokens) if text.strip() else ())

    def _reason(self, exc: Exception, attempts: int) -> str:
        tries = f" ({attempts} tries)" if attempts > 1 else ""
        if isinstance(exc, TimeoutError | openai.APITimeoutError):
            return f"no transcript within {self.timeout_s:g} s{tries}"
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            said = str(body.get("message") or exc.message).strip().splitlines()[0][:200]
            hint = {
                401: " (is OPENAI_API_KEY right?)",
                404: " (is STT_MODEL a transcription model, and OPENAI_BASE_URL right?)",
            }.get(exc.status_code, "")
            return f"HTTP {exc.status_code}: {said}{hint}{tries}"
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot reach it: {_first_line(_root_cause(exc))}{tries}"
        return f"{type(exc).__name__}: {_first_line(exc)}{tries}"


def _transient(exc: Exception) -> bool:
    """Worth one more try: a connection that failed at once or broke, or a server error.
    A timeout has used the turn's time; a 4xx would say the same again."""
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error: "Connect call failed" where httpx says "Connection error"."""
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def wav_bytes(audio: np.ndarray, rate: int = PHONE_RATE) -> bytes:
    """float32 mono 16 kHz -> a 16-bit mono WAV file at `rate` (8 or 16 kHz)."""
    pcm = to_phone(audio, WHISPER_RATE) if rate == PHONE_RATE else to_int16(audio)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


def words_from_logprobs(tokens: list[Any]) -> tuple[HeardWord, ...]:
    """The API's token log probabilities -> words with probabilities, grouped as Whisper's
    tokens are (a word is as doubtful as its weakest token)."""
    pieces = []
    for t in tokens:
        if t.logprob is None:
            continue
        piece = t.token if t.token is not None else bytes(t.bytes or ()).decode(errors="replace")
        pieces.append((piece, math.exp(min(t.logprob, 0.0))))
    return heard_from_tokens(pieces)
