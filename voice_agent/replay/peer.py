"""Twilio's side of a call, as the server sees it on the wire: the signed webhook that
rings, and the signed media stream with Twilio's playback buffer and mark echoes."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import websockets

from voice_agent.twilio.signatures import SignatureChecker

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
    http: httpx.AsyncClient,
    signer: SignatureChecker,
    base_url: str,
    caller: str,
    line: str,
    via: str | None = None,
) -> Ringing:
    """`via`: post to this base URL (one worker behind a balancer) while signing for
    `base_url` (the public one), as the balancer would deliver Twilio's request."""
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
    url = f"{base_url.rstrip('/')}/twilio/voice"
    twiml = await post_signed(http, signer, url, params, via=_moved(url, via))
    return parse_connect(call_sid, params, twiml)


def _moved(url: str, base: str | None) -> str | None:
    """`url` on another host and port (a worker's), same path and query."""
    if base is None:
        return None
    parts = httpx.URL(url)
    target = httpx.URL(base)
    return str(parts.copy_with(scheme=target.scheme, host=target.host, port=target.port))


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
    ringing: Ringing,
    signer: SignatureChecker,
    fast: bool = False,
    send_start: bool = True,
    via: str | None = None,
) -> AsyncIterator[TwilioPeer]:
    """Open the media stream as Twilio would: signed handshake, `connected`, `start`.
    `via`: connect to this base URL (one worker) instead, signed for the public URL."""
    assert ringing.stream_url, "the webhook did not connect a stream"
    headers = {"X-Twilio-Signature": signer.sign(ringing.stream_url, {})}
    stream_sid = "MZ" + secrets.token_hex(16)
    target = _moved(ringing.stream_url, via and via.replace("http", "ws", 1)) or ringing.stream_url
    async with websockets.connect(target, additional_headers=headers) as ws:
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


async def post_signed(
    http: httpx.AsyncClient,
    signer: SignatureChecker,
    url: str,
    params: dict[str, str],
    via: str | None = None,
) -> str:
    headers = {"X-Twilio-Signature": signer.sign(url, params)}
    response = await http.post(via or url, data=params, headers=headers)
    response.raise_for_status()
    return response.text
