"""A quiet line: how long the caller has said nothing while nothing else was going on, so
the agent asks whether they are still there (and, in the end, hangs up). Frames count media
time; a stream that stops sending frames at all is still a quiet line, counted by the
clock. The same clock lets Playback take as played the marks a line never echoes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from media.vad import FRAME_MS
from voice_agent.call.playback import Playback

log = logging.getLogger(__name__)


class QuietLine:
    def __init__(
        self,
        call_sid: str,
        prompt_after_ms: int,
        period_s: float,
        playback: Playback,
        busy: Callable[[], bool],  # the caller talks, the agent talks or an answer is under way
        prompt: Callable[[int], None],  # the line was quiet: prompt (prompts so far)
    ) -> None:
        self.call_sid, self._after_ms, self._period_s = call_sid, prompt_after_ms, period_s
        self._playback, self._busy, self._prompt = playback, busy, prompt
        self._quiet_ms = 0
        self._prompts = 0
        self._last_media = time.monotonic()

    def caller_active(self) -> None:
        """The caller spoke or pressed a key: the count and the prompts start over."""
        self._quiet_ms, self._prompts = 0, 0

    def media(self) -> None:
        self._last_media = time.monotonic()

    def tick(self, elapsed_ms: int = FRAME_MS) -> None:
        self._quiet_ms = 0 if self._busy() else self._quiet_ms + elapsed_ms
        if self._quiet_ms >= self._after_ms:
            self._quiet_ms = 0
            prompts, self._prompts = self._prompts, self._prompts + 1
            self._prompt(prompts)

    async def watchdog(self) -> None:
        """What frames cannot tell: time passing with no frames, and marks not echoed."""
        period = self._period_s
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if self._playback.expire(now):
                log.warning("call %s: marks not echoed in time; taken as played", self.call_sid)
            if now - self._last_media >= 2 * period:  # frames stopped: the clock counts
                self.tick(int(period * 1000))
