"""Put inbound media chunks back in order, drop duplicates, and fill lost chunks with
silence, so the VAD and the recording see one continuous timeline."""

from __future__ import annotations

from media.g711 import FRAME_BYTES, SILENCE_CODE

# Twilio never skips more than a burst of lost packets. A larger jump in `chunk` is a
# renumbered or hostile stream: filling it would decode minutes of silence in one go (a
# jump of 10^6 froze the event loop for 16 s), so at most this much is filled.
MAX_FILL_FRAMES = 50  # 1 s


class JitterBuffer:
    """Holds up to `depth` early chunks while waiting for a missing one."""

    def __init__(self, depth: int = 3, max_fill: int = MAX_FILL_FRAMES) -> None:
        self.depth, self.max_fill = depth, max_fill
        self._next: int | None = None
        self._held: dict[int, bytes] = {}
        self.duplicates = 0
        self.late = 0
        self.filled = 0
        self.jumps = 0  # gaps too large to be loss: the timeline resumed after max_fill

    def push(self, chunk: int, payload: bytes) -> list[bytes]:
        """Returns the payloads now ready, in order."""
        if chunk == self._next and not self._held:  # the usual case: the next, nothing held
            self._next += 1
            return [payload]
        if self._next is None:
            self._next = chunk
        if chunk < self._next:
            self.late += 1
            return []
        if chunk in self._held:
            self.duplicates += 1
            return []
        self._held[chunk] = payload
        ready = self._drain()
        if len(self._held) > self.depth:
            # Give up on the missing chunk(s): play silence in their place.
            first = min(self._held)
            gap = first - self._next
            if gap > self.max_fill:
                self.jumps += 1
                gap = self.max_fill
            self.filled += gap
            ready.append(bytes([SILENCE_CODE]) * (FRAME_BYTES * gap))
            self._next = first
            ready.extend(self._drain())
        return ready

    def _drain(self) -> list[bytes]:
        ready = []
        while self._next in self._held:
            ready.append(self._held.pop(self._next))
            self._next += 1
        return ready

    def flush(self) -> list[bytes]:
        ready: list[bytes] = []
        for chunk in sorted(self._held):
            ready.append(self._held.pop(chunk))
        return ready
