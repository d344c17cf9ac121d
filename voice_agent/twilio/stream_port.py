"""The call core's AudioPort on a Twilio Media Streams WebSocket: audio, marks and clears as
Twilio's outbound JSON messages, and hanging up as closing the stream."""

from __future__ import annotations

import contextlib

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from voice_agent.twilio import protocol as wire


class TwilioPort:
    """No lock of its own: the core's Speaker is the only writer and already sends one
    thing at a time (see AudioPort)."""

    def __init__(self, ws: WebSocket, stream_sid: str) -> None:
        self.ws, self.stream_sid = ws, stream_sid

    async def play(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self.ws.send_text(wire.media(self.stream_sid, frame))

    async def mark(self, name: str) -> None:
        await self.ws.send_text(wire.mark(self.stream_sid, name))

    async def clear(self) -> None:
        await self.ws.send_text(wire.clear(self.stream_sid))

    async def hang_up(self) -> None:
        """Close the stream (Twilio then goes on with the call's TwiML: a transfer's <Dial>,
        or hanging up). It may come while a send is stuck: the stream still closes."""
        if self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.close(code=1000)
