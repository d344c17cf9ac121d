"""Place a call the way Twilio does: signed webhook, signed WebSocket, mu-law frames at
real-time pace, marks echoed once the agent's audio has "played". One file per caller turn
(a WAV, or a JSONL capture of Twilio messages); the client waits for the agent's whole
answer before the next turn, streaming line silence meanwhile as Twilio does."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

from media import g711
from media.vad import FRAME_SAMPLES, VoiceDetector
from media.wav import AudioFileError, read_wav_phone
from voice_agent.twilio_auth import SignatureChecker

FRAME_S = 0.02
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
        self.agent_done = asyncio.Event()  # an answer's last (".end") mark came back
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    async def send(self, event: str, **body: object) -> None:
        self.seq += 1
        msg = {"event": event, "sequenceNumber": str(self.seq), "streamSid": self.stream_sid}
        msg.update(body)
        await self.ws.send(json.dumps(msg))

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
    signer = SignatureChecker(auth_token)
    audio = [load_turn(p) for p in turns]
    async with httpx.AsyncClient(timeout=30) as http:
        ringing = await ring(http, signer, base_url, caller, line)
        result = CallResult(call_sid=ringing.call_sid)
        if ringing.stream_url is None:
            say(f"the line did not connect a stream: {ringing.twiml}")
            return result
        async with connect_stream(ringing, signer, fast) as peer:
            result.greeted = await wait_for_answer(peer, turn_timeout_s)
            say(f"agent greeted: {result.greeted}")
            for path, mulaw in zip(turns, audio, strict=True):
                if peer.closed.is_set():
                    break
                turn = await caller_turn(peer, path.name, mulaw, turn_timeout_s)
                result.turns.append(turn)
                shown = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "none"
                say(f"caller turn {path.name}: agent answered after {shown}")
            result.closed_by_agent = peer.closed.is_set()
        result.agent_audio = g711.decode(b"".join(peer.agent_frames))
        if ringing.action:
            ended = {**ringing.params, "CallStatus": "in-progress"}
            result.after_stream_twiml = await post_signed(http, signer, ringing.action, ended)
    return result


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
