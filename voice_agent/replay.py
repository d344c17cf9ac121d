"""Place a call the way Twilio does: signed webhook, signed WebSocket, mu-law frames at
real-time pace, marks echoed once the agent's audio "played". One WAV per caller turn;
the client waits for the agent's answer before the next turn."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

from media import g711
from media.vad import FRAME_SAMPLES, VoiceDetector
from media.wav import read_wav_phone
from voice_agent.twilio_auth import SignatureChecker

FRAME_S = 0.02
SILENCE_FRAME = bytes([g711.SILENCE_CODE, 0x7F]) * (g711.FRAME_BYTES // 2)  # as Twilio sends


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
    agent_audio: list[np.ndarray] = field(default_factory=list)


def speech_end_frame(pcm: np.ndarray) -> int:
    """Index of the frame after the last voiced one: where the caller stops talking."""
    vad = VoiceDetector(2)
    last = 0
    for i in range(len(pcm) // FRAME_SAMPLES):
        if vad.is_speech(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]):
            last = i + 1
    return last


class _FakeTwilio:
    """The Twilio side of one media stream, including its playback buffer."""

    def __init__(self, ws: websockets.ClientConnection, stream_sid: str, fast: bool) -> None:
        self.ws, self.stream_sid, self.fast = ws, stream_sid, fast
        self.chunk = 0
        self.seq = 0
        self.play_until = 0.0
        self.pending_marks: list[tuple[float, str]] = []
        self.first_agent_frame: float | None = None
        self.agent_frames: list[bytes] = []
        self.agent_done = asyncio.Event()  # an utterance's last mark came back
        self.closed = asyncio.Event()

    async def send(self, event: str, **body: object) -> None:
        self.seq += 1
        msg = {"event": event, "sequenceNumber": str(self.seq), "streamSid": self.stream_sid}
        msg.update(body)
        await self.ws.send(json.dumps(msg))

    async def send_audio(self, mulaw: bytes) -> None:
        self.chunk += 1
        await self.send(
            "media",
            media={
                "track": "inbound",
                "chunk": str(self.chunk),
                "timestamp": str(40 + self.chunk * 20),
                "payload": base64.b64encode(mulaw).decode(),
            },
        )
        await self._echo_due_marks()

    async def _echo_due_marks(self) -> None:
        now = time.perf_counter()
        while self.pending_marks and (self.fast or self.pending_marks[0][0] <= now):
            _, name = self.pending_marks.pop(0)
            await self.send("mark", mark={"name": name})
            if name.endswith(".end"):
                self.agent_done.set()

    async def listen(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
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
                    # Twilio drops queued audio and returns the marks still pending.
                    self.play_until = now
                    for i, (_, name) in enumerate(self.pending_marks):
                        self.pending_marks[i] = (now, name)
                if self.fast:
                    await self._echo_due_marks()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self.agent_done.set()


async def place_call(
    base_url: str,
    auth_token: str,
    turns: list[Path],
    *,
    caller: str = "+15555550123",
    line: str = "+15550100200",
    fast: bool = False,
    turn_timeout_s: float = 30.0,
    on_event: callable | None = None,  # type: ignore[valid-type]
) -> CallResult:
    say = on_event or (lambda _msg: None)
    call_sid = "CA" + secrets.token_hex(16)
    signer = SignatureChecker(auth_token)
    base_url = base_url.rstrip("/")
    params = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": caller,
        "To": line,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    result = CallResult(call_sid=call_sid)
    async with httpx.AsyncClient(timeout=30) as http:
        twiml = await _post_signed(http, signer, f"{base_url}/twilio/voice", params)
        stream_url, token, action = _parse_connect(twiml)
        if stream_url is None:
            say(f"the line did not connect a stream: {twiml}")
            return result
        headers = {"X-Twilio-Signature": signer.sign(stream_url, {})}
        stream_sid = "MZ" + secrets.token_hex(16)
        async with websockets.connect(stream_url, additional_headers=headers) as ws:
            twilio = _FakeTwilio(ws, stream_sid, fast)
            listener = asyncio.create_task(twilio.listen())
            await ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            await twilio.send(
                "start",
                start={
                    "streamSid": stream_sid,
                    "accountSid": params["AccountSid"],
                    "callSid": call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"token": token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            )
            result.greeted = await _wait_for_agent(twilio, turn_timeout_s, fast)
            say(f"agent greeted: {result.greeted}")
            for path in turns:
                if twilio.closed.is_set():
                    break
                turn = await _caller_turn(twilio, path, fast, turn_timeout_s)
                result.turns.append(turn)
                shown = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "none"
                say(f"caller turn {path.name}: agent answered after {shown}")
            result.closed_by_agent = twilio.closed.is_set()
            if not twilio.closed.is_set():
                await twilio.send(
                    "stop", stop={"accountSid": params["AccountSid"], "callSid": call_sid}
                )
                await ws.close()
            await listener
            result.agent_audio = [g711.decode(b"".join(twilio.agent_frames))]
        if action:
            result.after_stream_twiml = await _post_signed(
                http, signer, action, {**params, "CallStatus": "in-progress"}
            )
    return result


async def _caller_turn(twilio: _FakeTwilio, path: Path, fast: bool, timeout_s: float) -> TurnResult:
    pcm = read_wav_phone(path)
    end_frame = speech_end_frame(pcm)
    mulaw = g711.encode(pcm)
    frames = [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
    frames[-1] = frames[-1].ljust(g711.FRAME_BYTES, bytes([g711.SILENCE_CODE]))
    twilio.agent_done.clear()
    twilio.first_agent_frame = None
    start = time.perf_counter()
    speech_end_at = start
    for i, frame in enumerate(frames):
        await twilio.send_audio(frame)
        if i + 1 == end_frame:
            speech_end_at = time.perf_counter()
        await _pace(start, i + 1, fast)
    # Twilio keeps streaming the line's silence while the agent thinks and talks.
    sent = len(frames)
    deadline = time.perf_counter() + timeout_s
    while not twilio.closed.is_set() and time.perf_counter() < deadline:
        if twilio.agent_done.is_set() and not twilio.pending_marks:
            break
        await twilio.send_audio(SILENCE_FRAME)
        sent += 1
        # Fast mode still paces the silence once the hangover has surely passed, so the
        # agent gets wall time to think without a flood of frames.
        await _pace(start, sent, fast and sent - len(frames) < 60)
    first = twilio.first_agent_frame
    latency = (first - speech_end_at) * 1000 if first is not None else None
    return TurnResult(path.name, latency, len(twilio.agent_frames) * FRAME_S)


async def _wait_for_agent(twilio: _FakeTwilio, timeout_s: float, fast: bool) -> bool:
    start, sent = time.perf_counter(), 0
    while time.perf_counter() - start < timeout_s and not twilio.closed.is_set():
        if twilio.agent_done.is_set() and not twilio.pending_marks:
            return True
        await twilio.send_audio(SILENCE_FRAME)
        sent += 1
        await _pace(start, sent, False)
    return False


async def _pace(start: float, frames_sent: int, fast: bool) -> None:
    if fast:
        await asyncio.sleep(0)
        return
    delay = start + frames_sent * FRAME_S - time.perf_counter()
    await asyncio.sleep(max(0.0, delay))


async def _post_signed(
    http: httpx.AsyncClient, signer: SignatureChecker, url: str, params: dict[str, str]
) -> str:
    response = await http.post(
        url, data=params, headers={"X-Twilio-Signature": signer.sign(url, params)}
    )
    response.raise_for_status()
    return response.text


def _parse_connect(twiml: str) -> tuple[str | None, str, str | None]:
    root = ET.fromstring(twiml)
    connect = root.find("Connect")
    stream = connect.find("Stream") if connect is not None else None
    if stream is None:
        return None, "", None
    token = next(
        (p.get("value", "") for p in stream.findall("Parameter") if p.get("name") == "token"), ""
    )
    return stream.get("url"), token, connect.get("action")
