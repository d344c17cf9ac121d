"""Put inbound media chunks back in order, drop duplicates, and fill lost chunks with
silence, so the VAD and the recording see one continuous timeline."""

from __future__ import annotations

from media.g711 import FRAME_BYTES, SILENCE_CODE


class JitterBuffer:
    """Holds up to `depth` early chunks while waiting for a missing one."""

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth
        self._next: int | None = None
        self._held: dict[int, bytes] = {}
        self.duplicates = 0
        self.late = 0
        self.filled = 0

    def push(self, chunk: int, payload: bytes) -> list[bytes]:
        """Returns the payloads now ready, in order."""
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
