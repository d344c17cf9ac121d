"""The call as the caller lived it: a stereo timeline at 8 kHz, caller left, agent right.

Time is the caller's: every inbound 20 ms frame (in order, gaps filled) advances it by one
frame. What the agent sends is queued as Twilio queues it and plays from when it was sent,
so each caller frame takes the next 160 queued agent samples (silence if there are none).
A barge-in `clear` drops what was queued: the caller never heard it.

Samples are interleaved into a preallocated one-second block; a full block goes to the
writer, which seals it as one encrypted record. With `background=True` that write (AES-GCM,
write, fsync) runs in a thread of the recorder's own, in order, so the event loop never
waits for the disk: per frame, the cost is two numpy copies into the block.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

RATE = 8000
FRAME_SAMPLES = 160
BLOCK_FRAMES = 50  # one second: the EncryptedWriter seals records of that size


class PcmWriter(Protocol):
    def write(self, pcm: bytes) -> None: ...
    def close(self) -> None: ...


class StereoRecorder:
    def __init__(
        self, writer: PcmWriter, *, background: bool = False, block_frames: int = BLOCK_FRAMES
    ) -> None:
        self.writer = writer
        self._block = np.zeros((block_frames * FRAME_SAMPLES, 2), dtype="<i2")
        self._filled = 0
        self._agent: deque[np.ndarray] = deque()
        self._agent_offset = 0  # samples of _agent[0] already played
        self._io = ThreadPoolExecutor(1, thread_name_prefix="recording") if background else None
        self._last_write: Future[None] | None = None
        self.error: BaseException | None = None  # the first write failure; recording stops
        self.closed = False
        self.samples = 0  # stereo frames written (or handed to the writer thread)

    # ---- the timeline ---------------------------------------------------------------

    def caller_frame(self, pcm: np.ndarray) -> None:
        """One inbound frame (int16, normally 160 samples): advances time by its length."""
        if self.closed or self.error is not None:
            return
        done = 0
        while done < len(pcm):
            n = min(len(pcm) - done, len(self._block) - self._filled)
            block = self._block[self._filled : self._filled + n]
            block[:, 0] = pcm[done : done + n]
            self._take_agent(block[:, 1])
            self._filled += n
            done += n
            if self._filled == len(self._block):
                self._emit()

    def agent_audio(self, pcm: np.ndarray) -> None:
        """Audio the agent just sent: it plays after whatever is still queued."""
        if len(pcm) and not self.closed:
            self._agent.append(np.asarray(pcm, dtype=np.int16))

    def clear(self) -> None:
        """Barge-in: Twilio drops the queued audio, so the caller never hears it."""
        self._agent.clear()
        self._agent_offset = 0

    @property
    def agent_queued(self) -> int:
        """Agent samples sent but not yet played on the caller's timeline."""
        return sum(len(a) for a in self._agent) - self._agent_offset

    def _take_agent(self, out: np.ndarray) -> None:
        filled = 0
        while filled < len(out) and self._agent:
            head = self._agent[0]
            n = min(len(out) - filled, len(head) - self._agent_offset)
            out[filled : filled + n] = head[self._agent_offset : self._agent_offset + n]
            filled += n
            self._agent_offset += n
            if self._agent_offset == len(head):
                self._agent.popleft()
                self._agent_offset = 0
        out[filled:] = 0

    # ---- to the writer --------------------------------------------------------------

    def _emit(self) -> None:
        if self._filled == 0:
            return
        data = self._block[: self._filled].tobytes()
        self.samples += self._filled
        self._filled = 0
        if self._io is None:
            self._write(data)
        else:
            self._last_write = self._io.submit(self._write, data)

    def _write(self, data: bytes) -> None:
        if self.error is not None:
            return  # a half-written record would make the rest unreadable: stop
        try:
            self.writer.write(data)
        except Exception as exc:
            self.error = exc
            log.error("recording stopped: %s: %s", type(exc).__name__, exc)

    def close(self) -> None:
        """Write what is left and seal the file. Agent audio still queued was not heard.
        Blocking (it waits for the disk): async code calls it via asyncio.to_thread."""
        if self.closed:
            return
        self.closed = True
        self._emit()
        self._agent.clear()
        try:
            if self._io is None:
                self.writer.close()
            else:
                self._io.submit(self.writer.close).result()
        finally:
            if self._io is not None:
                self._io.shutdown(wait=True)

    @property
    def duration_s(self) -> float:
        return self.samples / RATE
