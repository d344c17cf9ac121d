"""What the call core needs from the line it talks on, and nothing about how that line works.

Outbound, the core speaks only to an AudioPort: it plays mu-law audio, marks points in it,
clears what has not been played yet, and hangs up. play, mark and clear come one at a time
(the Speaker holds them in order), so a port needs no lock of its own; hang_up may come at
any time. A port queues audio the way a phone
line does: what is played goes out after whatever is still queued, and a mark is reported
back (to CallSession.on_mark) once everything before it has played.

Inbound, the core takes plain calls from whoever owns the line (CallSession.on_audio,
on_mark, finish). The Twilio Media Streams adapter is voice_agent.twilio.stream_port.
"""

from __future__ import annotations

from typing import Protocol


class AudioPort(Protocol):
    async def play(self, frames: list[bytes]) -> None:
        """Queue audio after whatever is queued already: mu-law 8 kHz, 20 ms (160 byte)
        frames, in order."""
        ...

    async def mark(self, name: str) -> None:
        """Queue a mark after the audio queued so far. The line reports it back (on_mark)
        once that audio has played; a cleared mark comes back too, or not at all."""
        ...

    async def clear(self) -> None:
        """Drop all audio queued and not yet played (the caller talked over the agent)."""
        ...

    async def hang_up(self) -> None:
        """End the call's audio. Safe to call more than once, and after the line is gone."""
        ...
