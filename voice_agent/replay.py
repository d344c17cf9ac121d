"""Place a call the way Twilio does: signed webhook, signed WebSocket, mu-law frames at
real-time pace, marks echoed once the agent's audio has "played". One file per caller turn
(a WAV, or a JSONL capture of Twilio messages); the client waits for the agent's whole
answer before the next turn, streaming line silence meanwhile as Twilio does.

Or one continuous stream (`place_stream_call`): the caller channel of a recorded call,
silences and all, sent as it was heard, with the agent answering as it goes."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

from media import g711
from media.vad import (
    FRAME_SAMPLES,
    Endpointer,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    VoiceDetector,
)
from media.wav import AudioFileError, read_wav_phone
from voice_agent.settings import Settings
from voice_agent.twilio_auth import SignatureChecker

FRAME_S = 0.02
FRAME_MS = 20
SILENCE_FRAME = bytes([0xFF, 0x7F]) * (g711.FRAME_BYTES // 2)  # what Twilio sends for silence
ACCOUNT_SID = "AC" + "0" * 32


@dataclass
class Ringing:
    """A call Twilio has placed to the webhook, and what the webhook answered."""

    call_sid: str
    params: dict[str, str]
    twiml: str
    stream_url: str | None
    token: str
    action: str | None
    parameters: dict[str, str] = field(default_factory=dict)  # every <Parameter>, token too


@dataclass
class TurnResult:
    file: str
    latency_ms: float | None  # end of speech in the file -> first agent frame
    agent_audio_s: float = 0.0


@dataclass
class CallResult:
    call_sid: str
    greeted: bool = False
    turns: list[TurnResult] = field(default_factory=list)
    closed_by_agent: bool = False
    after_stream_twiml: str = ""
    agent_audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))


def load_turn(path: Path) -> bytes:
    """Caller audio as mu-law bytes, from a WAV or from a JSONL capture's inbound media."""
    if path.suffix == ".jsonl":
        try:
            messages = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            media = [m["media"] for m in messages if m.get("event") == "media"]
            media.sort(key=lambda m: int(m.get("chunk", 0)))
            return b"".join(base64.b64decode(m["payload"]) for m in media)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AudioFileError(f"{path}: not a Twilio capture ({exc})") from exc
    return g711.encode(read_wav_phone(path))


class ReplayError(Exception):
    """Nothing to replay: no such call, no recording, or one that cannot be read."""


@dataclass
class RecordedCaller:
    audio: np.ndarray  # int16, 8 kHz: the caller (left) channel of the recording
    line: str  # the number the call reached
    streams: int  # recordings the call has; the first is the one replayed


def recorded_caller(settings: Settings, call_sid: str) -> RecordedCaller:
    """Decrypt a stored call's recording (same data dir, database and key as the server)
    and take its caller channel."""
    from storage import db
    from storage.calls import CallStore
    from storage.recordings import KEY_FILE, RecordingError, RecordingStore, load_key

    engine = db.make_engine(settings.resolved_database_url())
    try:
        db.upgrade(engine)
        call = CallStore(engine).call_json(call_sid)
        if call is None:
            raise ReplayError(f"no call {call_sid}")
        try:
            key = load_key(settings.recording_key, settings.data_dir / KEY_FILE, create=False)
            store = RecordingStore(engine, settings.data_dir / "recordings", key)
            found = store.all_for_call(call_sid)
            if not found:
                raise ReplayError(
                    f"call {call_sid} has no recording (recording was off for it, or it "
                    "was deleted)"
                )
            pcm = b"".join(store.pcm(found[0]))
        except (RecordingError, ValueError, OSError) as exc:
            raise ReplayError(f"cannot read the recording of call {call_sid}: {exc}") from exc
    finally:
        engine.dispose()
    stereo = np.frombuffer(pcm[: len(pcm) // 4 * 4], dtype="<i2").reshape(-1, 2)
    return RecordedCaller(stereo[:, 0].copy(), call["to"], len(found))


def speech_end_frame(mulaw: bytes) -> int:
    """Index of the frame after the last voiced one: where the caller stops talking."""
    vad, last = VoiceDetector(2), 0
    pcm = g711.decode(mulaw)
    for i in range(len(pcm) // FRAME_SAMPLES):
        if vad.is_speech(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]):
            last = i + 1
    return last


class TwilioPeer:
    """Twilio's side of one media stream, including its playback buffer and mark echoes."""

    def __init__(self, ws: websockets.ClientConnection, stream_sid: str, fast: bool) -> None:
        self.ws, self.stream_sid, self.fast = ws, stream_sid, fast
        self.chunk = 0
        self.seq = 0
        self.play_until = 0.0
        self.pending_marks: list[tuple[float, str]] = []
        self.echo_marks = True
        self.first_agent_frame: float | None = None
        self.agent_frames: list[bytes] = []
        self.received: list[dict] = []
        self.cleared = asyncio.Event()
        self.cleared_at: float | None = None  # perf_counter() of the first `clear`
        self.agent_done = asyncio.Event()  # an answer's last (".end") mark came back
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    async def send(self, event: str, **body: object) -> None:
        self.seq += 1
        msg = {"event": event, "sequenceNumber": str(self.seq), "streamSid": self.stream_sid}
        msg.update(body)
        try:
            await self.ws.send(json.dumps(msg))
        except websockets.ConnectionClosed:
            # The agent hung up while the caller was still talking: Twilio stops streaming
            # too.
            self.close_code = self.ws.close_code
            self.closed.set()

    async def send_audio(self, mulaw: bytes) -> None:
        self.chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(40 + self.chunk * 20),
            "payload": base64.b64encode(mulaw).decode(),
        }
        await self.send("media", media=media)
        await self.echo_due_marks()

    async def echo_due_marks(self) -> None:
        now = time.perf_counter()
        while (
            self.echo_marks
            and self.pending_marks
            and (self.fast or self.pending_marks[0][0] <= now)
        ):
            _, name = self.pending_marks.pop(0)
            await self.send("mark", mark={"name": name})
            if name.endswith(".end"):
                self.agent_done.set()

    async def listen(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                self.received.append(msg)
                now = time.perf_counter()
                if msg["event"] == "media":
                    frame = base64.b64decode(msg["media"]["payload"])
                    self.agent_frames.append(frame)
                    if self.first_agent_frame is None:
                        self.first_agent_frame = now
                    self.play_until = max(self.play_until, now) + len(frame) / 8000
                elif msg["event"] == "mark":
                    self.pending_marks.append((self.play_until, msg["mark"]["name"]))
                elif msg["event"] == "clear":
                    # Twilio drops the queued audio and returns the marks still pending.
                    self.play_until = now
                    self.pending_marks = [(now, name) for _, name in self.pending_marks]
                    self.cleared_at = self.cleared_at or now
                    self.cleared.set()
                if self.fast:
                    await self.echo_due_marks()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self.agent_done.set()

    @property
    def answer_finished(self) -> bool:
        return self.agent_done.is_set() and not self.pending_marks


async def ring(
    http: httpx.AsyncClient, signer: SignatureChecker, base_url: str, caller: str, line: str
) -> Ringing:
    call_sid = "CA" + secrets.token_hex(16)
    params = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": line,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    twiml = await post_signed(http, signer, f"{base_url.rstrip('/')}/twilio/voice", params)
    return parse_connect(call_sid, params, twiml)


def parse_connect(call_sid: str, params: dict[str, str], twiml: str) -> Ringing:
    """What Twilio reads in <Connect><Stream>: where to stream, with which parameters."""
    root = ET.fromstring(twiml)
    connect = root.find("Connect")
    stream = connect.find("Stream") if connect is not None else None
    if connect is None or stream is None:
        return Ringing(call_sid, params, twiml, None, "", None)
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return Ringing(
        call_sid,
        params,
        twiml,
        stream.get("url"),
        parameters.get("token", ""),
        connect.get("action"),
        parameters,
    )


@asynccontextmanager
async def connect_stream(
    ringing: Ringing, signer: SignatureChecker, fast: bool = False, send_start: bool = True
) -> AsyncIterator[TwilioPeer]:
    """Open the media stream as Twilio would: signed handshake, `connected`, `start`."""
    assert ringing.stream_url, "the webhook did not connect a stream"
    headers = {"X-Twilio-Signature": signer.sign(ringing.stream_url, {})}
    stream_sid = "MZ" + secrets.token_hex(16)
    async with websockets.connect(ringing.stream_url, additional_headers=headers) as ws:
        peer = TwilioPeer(ws, stream_sid, fast)
        listener = asyncio.create_task(peer.listen())
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        if send_start:
            await peer.send(
                "start",
                start={
                    "streamSid": stream_sid,
                    "accountSid": ACCOUNT_SID,
                    "callSid": ringing.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {**ringing.parameters, "token": ringing.token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            )
        try:
            yield peer
        finally:
            if not peer.closed.is_set():
                stop = {"accountSid": ACCOUNT_SID, "callSid": ringing.call_sid}
                try:
                    await peer.send("stop", stop=stop)
                    await ws.close()
                except websockets.ConnectionClosed:
                    pass
            await listener


async def place_call(
    base_url: str,
    auth_token: str,
    turns: list[Path],
    *,
    caller: str = "+15555550123",
    line: str = "+15550100200",
    fast: bool = False,
    turn_timeout_s: float = 30.0,
    on_event: Callable[[str], None] | None = None,
) -> CallResult:
    say = on_event or (lambda _msg: None)
    audio = [load_turn(p) for p in turns]

    async def converse(peer: TwilioPeer, result: CallResult) -> None:
        result.greeted = await wait_for_answer(peer, turn_timeout_s)
        say(f"agent greeted: {result.greeted}")
        for path, mulaw in zip(turns, audio, strict=True):
            if peer.closed.is_set():
                break
            turn = await caller_turn(peer, path.name, mulaw, turn_timeout_s)
            result.turns.append(turn)
            say(f"caller turn {path.name}: agent answered after {_shown(turn)}")

    return await _place(base_url, auth_token, caller, line, fast, say, converse)


async def place_stream_call(
    base_url: str,
    auth_token: str,
    audio: bytes | np.ndarray,
    *,
    name: str = "caller",
    caller: str = "+15555550123",
    line: str = "+15550100200",
    fast: bool = False,
    turn_timeout_s: float = 30.0,
    on_event: Callable[[str], None] | None = None,
) -> CallResult:
    """One continuous caller stream (mu-law bytes, or int16 PCM at 8 kHz), e.g. the caller
    channel of a recorded call. A TurnResult per stretch of caller speech."""
    say = on_event or (lambda _msg: None)
    mulaw = audio if isinstance(audio, bytes) else g711.encode(np.asarray(audio))

    async def converse(peer: TwilioPeer, result: CallResult) -> None:
        result.greeted, result.turns = await caller_stream(peer, name, mulaw, turn_timeout_s, say)

    return await _place(base_url, auth_token, caller, line, fast, say, converse)


async def _place(
    base_url: str,
    auth_token: str,
    caller: str,
    line: str,
    fast: bool,
    say: Callable[[str], None],
    converse: Callable[[TwilioPeer, CallResult], Awaitable[None]],
) -> CallResult:
    signer = SignatureChecker(auth_token)
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            ringing = await ring(http, signer, base_url, caller, line)
        except httpx.TransportError as exc:  # refused, unknown host, timed out
            raise ReplayError(
                f"no voice agent answering at {base_url}: start it with `voice-agent serve` "
                f"(or give its --url) [{type(exc).__name__}]"
            ) from exc
        except httpx.HTTPStatusError as exc:
            raise ReplayError(_refused(base_url, exc.response.status_code)) from exc
        result = CallResult(call_sid=ringing.call_sid)
        if ringing.stream_url is None:
            say(f"the line did not connect a stream: {ringing.twiml}")
            return result
        async with AsyncExitStack() as stack:
            try:
                peer = await stack.enter_async_context(connect_stream(ringing, signer, fast))
            except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                raise ReplayError(
                    f"the voice agent at {base_url} answered the call, but its media stream "
                    f"{ringing.stream_url} cannot be opened ({exc}); is PUBLIC_BASE_URL right?"
                ) from exc
            await converse(peer, result)
            result.closed_by_agent = peer.closed.is_set()
        result.agent_audio = g711.decode(b"".join(peer.agent_frames))
        if ringing.action:
            ended = {**ringing.params, "CallStatus": "in-progress"}
            result.after_stream_twiml = await post_signed(http, signer, ringing.action, ended)
    return result


def _refused(base_url: str, status: int) -> str:
    if status == 403:
        return (
            f"the voice agent at {base_url} refused the signed webhook (403): replay signs "
            "with TWILIO_AUTH_TOKEN, or without it the development token in the data dir; "
            "use the server's (same TWILIO_AUTH_TOKEN or VOICE_AGENT_DATA_DIR)"
        )
    return f"the voice agent at {base_url} answered POST /twilio/voice with HTTP {status}"


def _shown(turn: TurnResult) -> str:
    return f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "none"


@dataclass(frozen=True)
class SpeechSpan:
    """One stretch of caller speech in a stream, in frames, as the server's endpointer
    (default settings) will see it."""

    start: int  # first voiced frame
    end: int  # the frame after the last voiced one
    decided: int  # the frame at which the hangover has run out: the turn is over


def speech_spans(mulaw: bytes) -> list[SpeechSpan]:
    vad, endpointer = VoiceDetector(2), Endpointer()
    pcm = g711.decode(mulaw)
    spans: list[SpeechSpan] = []
    start = 0
    for i in range(len(pcm) // FRAME_SAMPLES):
        frame = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        event = endpointer.push(frame, vad.is_speech(frame))
        if isinstance(event, SpeechStarted):
            start = event.at_ms // FRAME_MS
        elif isinstance(event, SpeechEnded):
            spans.append(SpeechSpan(start, event.end_ms // FRAME_MS, i + 1))
    last = endpointer.flush()
    if last is not None:
        spans.append(SpeechSpan(start, last.end_ms // FRAME_MS, len(pcm) // FRAME_SAMPLES))
    return spans


def as_paused(pcm: np.ndarray) -> np.ndarray:
    """The audio of the last SpeechPaused, as the session hands it to the transcriber."""
    vad, endpointer = VoiceDetector(), Endpointer()
    pcm = np.concatenate([pcm, np.zeros(8000, np.int16)])  # a second of line silence after
    last = pcm
    for i in range(len(pcm) // FRAME_SAMPLES):
        frame = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        event = endpointer.push(frame, vad.is_speech(frame))
        if isinstance(event, SpeechPaused):
            last = event.audio
    return last


async def caller_stream(
    peer: TwilioPeer,
    name: str,
    mulaw: bytes,
    timeout_s: float,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[bool, list[TurnResult]]:
    """Send the whole stream as Twilio would, the agent answering (or being talked over)
    as it goes. Real time, or with `peer.fast`: as fast as the agent keeps up, i.e. at full
    speed except in the caller's pauses, which go at real-time pace until the agent's
    answer is out (the rest of the pause is then skipped through at full speed). Then line
    silence until the answer to the last words has played. Returns whether the agent
    spoke before the caller did (the greeting), and a TurnResult per stretch of speech."""
    mulaw += bytes([g711.SILENCE_CODE]) * (-len(mulaw) % g711.FRAME_BYTES)
    frames = [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
    spans = speech_spans(mulaw)
    starts = {s.start: k for k, s in enumerate(spans)}
    ends = {s.end: k for k, s in enumerate(spans)}
    decided = {s.decided for s in spans}
    results: list[TurnResult] = []
    pending: tuple[int, float, int] | None = None  # span index, speech end time, frames then

    def settle() -> None:
        nonlocal pending
        if pending is None:
            return
        k, speech_end, frames_then = pending
        first = peer.first_agent_frame
        latency = (first - speech_end) * 1000 if first is not None else None
        audio_s = (len(peer.agent_frames) - frames_then) * FRAME_S
        results.append(TurnResult(f"{name}#{k + 1}", latency, audio_s))
        say(f"caller speech {k + 1}: agent answered after {_shown(results[-1])}")
        pending = None

    greeted: bool | None = None
    holding = True  # the greeting: real-time pace until it has played
    clock, paced = time.perf_counter(), 0
    for i, frame in enumerate(frames):
        if peer.closed.is_set():
            break
        if i in starts:
            if greeted is None:
                greeted = bool(peer.agent_frames)
                say(f"agent greeted: {greeted}")
            settle()
            holding = False
        if i in ends:
            peer.first_agent_frame = None
            peer.agent_done.clear()
            pending = (ends[i], time.perf_counter(), len(peer.agent_frames))
        if i in decided:
            holding = True
        await peer.send_audio(frame)
        if peer.fast and not (holding and not peer.agent_done.is_set()):
            await asyncio.sleep(0)
            clock, paced = time.perf_counter(), 0
        else:
            paced += 1
            await pace(clock, paced, False)
    if pending is not None and not peer.closed.is_set():
        await wait_for_answer(peer, timeout_s)
    settle()
    if greeted is None:  # the caller never spoke
        greeted = bool(peer.agent_frames)
    return greeted, results


async def caller_turn(peer: TwilioPeer, name: str, mulaw: bytes, timeout_s: float) -> TurnResult:
    end_frame = speech_end_frame(mulaw)
    pad = -len(mulaw) % g711.FRAME_BYTES
    mulaw += bytes([g711.SILENCE_CODE]) * pad
    frames = [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
    peer.agent_done.clear()
    peer.first_agent_frame = None
    frames_before = len(peer.agent_frames)
    start = time.perf_counter()
    speech_end_at = start
    for i, frame in enumerate(frames):
        await peer.send_audio(frame)
        if i + 1 == end_frame:
            speech_end_at = time.perf_counter()
        await pace(start, i + 1, peer.fast)
    await wait_for_answer(peer, timeout_s, start, len(frames))
    first = peer.first_agent_frame
    latency = (first - speech_end_at) * 1000 if first is not None else None
    return TurnResult(name, latency, (len(peer.agent_frames) - frames_before) * FRAME_S)


async def wait_for_answer(
    peer: TwilioPeer, timeout_s: float, start: float | None = None, sent: int = 0
) -> bool:
    """Stream line silence until the agent's answer has played in full (or time is up)."""
    start = time.perf_counter() if start is None else start
    fast_frames = sent + 60  # fast mode: rush through the endpointer's hangover only
    deadline = time.perf_counter() + timeout_s
    while not peer.closed.is_set() and time.perf_counter() < deadline:
        if peer.answer_finished:
            return True
        await peer.send_audio(SILENCE_FRAME)
        sent += 1
        await pace(start, sent, peer.fast and sent < fast_frames)
    return peer.answer_finished


async def pace(start: float, frames_sent: int, fast: bool) -> None:
    if fast:
        await asyncio.sleep(0)
        return
    await asyncio.sleep(max(0.0, start + frames_sent * FRAME_S - time.perf_counter()))


async def post_signed(
    http: httpx.AsyncClient, signer: SignatureChecker, url: str, params: dict[str, str]
) -> str:
    headers = {"X-Twilio-Signature": signer.sign(url, params)}
    response = await http.post(url, data=params, headers=headers)
    response.raise_for_status()
    return response.text
