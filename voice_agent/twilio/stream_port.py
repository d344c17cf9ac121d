"""The call core's AudioPort on a Twilio Media Streams WebSocket: audio, marks and clears as
Twilio's outbound JSON messages, and hanging up as closing the stream."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from voice_agent.twilio import protocol as wire


class TwilioPort:
    def __init__(self, ws: WebSocket, stream_sid: str) -> None:
        self.ws, self.stream_sid = ws, stream_sid
        self._lock = asyncio.Lock()  # one writer on the socket at a time

    async def play(self, frames: list[bytes]) -> None:
        async with self._lock:
            for frame in frames:
                await self.ws.send_text(wire.media(self.stream_sid, frame))

    async def mark(self, name: str) -> None:
        async with self._lock:
            await self.ws.send_text(wire.mark(self.stream_sid, name))

    async def clear(self) -> None:
        async with self._lock:
            await self.ws.send_text(wire.clear(self.stream_sid))

    async def hang_up(self) -> None:
        """Close the stream (Twilio then goes on with the call's TwiML: a transfer's <Dial>,
        or hanging up). Not behind the writer lock: a socket stuck sending still closes."""
        if self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.close(code=1000)
