"""The caller's side of a test call: waiting on what the agent does, with wall-clock
deadlines generous enough for a loaded machine (each returns as soon as it holds)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from voice_agent.replay.peer import TwilioPeer

DEADLINE_S = 60.0


async def eventually(check: Callable[[], object], timeout_s: float = DEADLINE_S) -> bool:
    """Poll `check()` until it is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def line_silence_until(
    peer: TwilioPeer, done: Callable[[], bool], timeout_s: float = DEADLINE_S
) -> bool:
    """Line silence (as Twilio streams it) until `done()` or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        await peer.send_audio(b"\xff" * 160)
        await asyncio.sleep(0.02)
    return True


async def until_agent_speaks(peer: TwilioPeer) -> bool:
    """Line silence until the agent's audio has reached the caller's side."""
    return await line_silence_until(peer, lambda: bool(peer.agent_frames))
