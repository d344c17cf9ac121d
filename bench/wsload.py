"""A cheap media-stream load client: Twilio's side of many silent streams at once.

It shares the machine with the servers it measures, so it does as little as it can per
frame: after a plain HTTP upgrade (no compression offered, as Twilio offers none) each
frame is one formatted string, masked in C (websockets' speedups) and written straight to
the socket. One timer per process sends every stream's frame for the current 2 ms slot, so
a thousand streams cost a few hundred wakeups a second, not 50,000; each stream keeps a
random slot, so frames reach the server spread over the 20 ms as real calls' do. From the
server it answers pings and closes, and echoes each mark once the agent audio sent before
it has played (20 ms a frame), as Twilio does; the audio itself is only counted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from websockets.speedups import apply_mask  # type: ignore[import-not-found]

FRAME_S = 0.02
SLOTS = 10  # phases within a 20 ms frame period
ACCOUNT_SID = "AC" + "0" * 32
SILENCE = base64.b64encode(b"\xff" * 160).decode()

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


@dataclass(frozen=True)
class StreamSpec:
    """One rung call: where its stream goes and what its `start` carries."""

    url: str  # ws://host:port/path?query
    signature: str
    call_sid: str
    parameters: dict[str, str]


def client_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """A masked client->server frame (RFC 6455 5.2), FIN set."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + mask + apply_mask(payload, mask)


@dataclass
class Totals:
    received_frames: int = 0
    closed_by_server: int = 0
    failed: int = 0
    behind_max_s: float = 0.0


class Stream(asyncio.Protocol):
    """One stream's socket: handshake, then frames out and pings answered."""

    def __init__(self, spec: StreamSpec, totals: Totals) -> None:
        self.spec, self.totals = spec, totals
        self.sid = "MZ" + secrets.token_hex(16)
        self.mask = os.urandom(4)
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.chunk = self.seq = 0
        self.stopping = False  # we sent our close: the server's is only its answer
        self.play_until = 0.0  # loop time when the agent audio sent so far has played
        self.marks: dict[str, asyncio.TimerHandle] = {}  # echoes not yet sent
        # Everything of a media message but its three counters, formatted once.
        self._head = '{"event":"media","sequenceNumber":"'
        self._mid = f'","streamSid":"{self.sid}","media":{{"track":"inbound","chunk":"'
        self._tail = f'","payload":"{SILENCE}"}}}}'

    # ---- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        url = urlsplit(self.spec.url)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {url.path}{'?' + url.query if url.query else ''} HTTP/1.1\r\n"
            f"Host: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"X-Twilio-Signature: {self.spec.signature}\r\n\r\n"
        )
        self.transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.upgraded.set_result(None)
        self._frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _frames(self) -> None:
        """Server frames are unmasked; only pings and closes need an answer."""
        buf = self.buffer
        while len(buf) >= 2:
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < at + n:
                return
            payload = bytes(buf[at : at + n])
            del buf[: at + n]
            self.totals.received_frames += 1
            if opcode == TEXT:
                self._agent(payload)
            elif opcode == PING:
                self._write(client_frame(PONG, payload, self.mask))
            elif opcode == CLOSE:
                if not self.stopping:
                    self.totals.closed_by_server += 1
                    self._write(client_frame(CLOSE, payload[:2], self.mask))
                if self.transport is not None:
                    self.transport.close()

    def _agent(self, text: bytes) -> None:
        """The agent's media, marks and clears: only marks need an answer, when due."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if text.startswith(b'{"event": "media"'):  # every frame the agent sends is 20 ms
            self.play_until = max(self.play_until, now) + FRAME_S
            return
        msg = json.loads(text)
        if msg.get("event") == "mark":
            name = msg["mark"]["name"]
            self.marks[name] = loop.call_at(self.play_until, self._echo, name)
        elif msg.get("event") == "clear":  # the queued audio is dropped, its marks return
            self.play_until = now
            for name, handle in list(self.marks.items()):
                handle.cancel()
                self._echo(name)

    def _echo(self, name: str) -> None:
        self.marks.pop(name, None)
        self.send_json("mark", mark={"name": name})

    # ---- sending ------------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def send_json(self, event: str, **body: object) -> None:
        self.seq += 1
        msg = {"event": event, "sequenceNumber": str(self.seq), "streamSid": self.sid, **body}
        self._write(client_frame(TEXT, json.dumps(msg).encode(), self.mask))

    def start(self) -> None:
        self._write(
            client_frame(
                TEXT,
                b'{"event":"connected","protocol":"Call","version":"1.0.0"}',
                self.mask,
            )
        )
        self.send_json(
            "start",
            start={
                "streamSid": self.sid,
                "accountSid": ACCOUNT_SID,
                "callSid": self.spec.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.spec.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        )

    def send_media(self) -> None:
        self.chunk += 1
        self.seq += 1
        text = (
            f"{self._head}{self.seq}{self._mid}{self.chunk}"
            f'","timestamp":"{(self.chunk - 1) * 20}{self._tail}'
        )
        self._write(client_frame(TEXT, text.encode(), self.mask))

    async def stop(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.send_json("stop", stop={"accountSid": ACCOUNT_SID, "callSid": self.spec.call_sid})
        self.stopping = True
        self._write(client_frame(CLOSE, struct.pack("!H", 1000), self.mask))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 10)
        except TimeoutError:
            self.transport.close()


@dataclass
class Pacer:
    """Sends each open stream's next frame in its slot of every 20 ms period."""

    slots: list[list[Stream]] = field(default_factory=lambda: [[] for _ in range(SLOTS)])

    def add(self, stream: Stream) -> None:
        self.slots[random.randrange(SLOTS)].append(stream)

    async def run(self, running: asyncio.Event, totals: Totals) -> None:
        step = FRAME_S / SLOTS
        start = time.perf_counter()
        k = 0
        while running.is_set():
            for stream in self.slots[k % SLOTS]:
                if stream.transport is not None and not stream.transport.is_closing():
                    stream.send_media()
            k += 1
            delay = start + k * step - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                totals.behind_max_s = max(totals.behind_max_s, -delay)
                await asyncio.sleep(0)


async def open_stream(spec: StreamSpec, totals: Totals) -> Stream | None:
    url = urlsplit(spec.url)
    loop = asyncio.get_running_loop()
    try:
        _, stream = await loop.create_connection(
            lambda: Stream(spec, totals), url.hostname, url.port or 80
        )
        await asyncio.wait_for(stream.upgraded, 30)
    except (OSError, ConnectionError, TimeoutError):
        totals.failed += 1
        return None
    stream.start()
    return stream
