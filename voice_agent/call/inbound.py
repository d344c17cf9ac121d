"""Caller audio in: numbered mu-law chunks -> jitter buffer -> 20 ms frames -> mu-law decode
-> VAD -> endpointer -> turn events, one frame at a time. When the call is recorded, every
frame goes to the recorder's caller side as it is taken in.

The per-frame cost here is a table lookup and one webrtcvad call; the endpointer counts
media time (frames), so replayed audio behaves as live audio does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import numpy as np

from media import g711
from media.jitter import JitterBuffer
from media.recorder import StereoRecorder
from media.vad import Endpointer, EndpointerConfig, SpeechEnded, VadEvent, VoiceDetector

log = logging.getLogger(__name__)


class CallerAudio:
    def __init__(
        self,
        vad_aggressiveness: int,
        endpointer: EndpointerConfig,
        recorder: StereoRecorder | None = None,
        vad_gate_db: float | None = 4.0,
    ) -> None:
        self._jitter = JitterBuffer()
        self._pending = bytearray()  # in order, not yet a whole frame (or not yet taken)
        self._vad = VoiceDetector(vad_aggressiveness, gate_db=vad_gate_db or None)
        self._endpointer = Endpointer(endpointer)
        self._recorder = recorder
        self.last_voiced_wall = 0.0  # perf_counter() of the last voiced frame of a turn

    def frames(self, chunk: int, payload: bytes) -> Iterator[VadEvent | None]:
        """One chunk in; for each whole frame it completes, in order, that frame's turn
        event (or None). Lazy: each frame is taken in as the caller asks for the next, so
        whatever the caller does with one frame's event happens before the next frame."""
        ready = self._jitter.push(chunk, payload)
        if not self._pending and len(ready) == 1 and len(ready[0]) == g711.FRAME_BYTES:
            # The usual case, one whole frame in order: no copies through _pending.
            yield self._take(g711.decode(ready[0]))
            return
        for piece in ready:
            self._pending += piece
        while len(self._pending) >= g711.FRAME_BYTES:
            frame = g711.decode(bytes(self._pending[: g711.FRAME_BYTES]))
            del self._pending[: g711.FRAME_BYTES]
            yield self._take(frame)

    def _take(self, frame: np.ndarray) -> VadEvent | None:
        if self._recorder is not None:
            self._recorder.caller_frame(frame)
        voiced = self._vad.is_speech(frame)
        event = self._endpointer.push(frame, voiced)
        if voiced and self._endpointer.in_speech:
            self.last_voiced_wall = time.perf_counter()
        return event

    @property
    def in_speech(self) -> bool:
        return self._endpointer.in_speech

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the caller's current turn."""
        return self._endpointer.voiced_ms

    @property
    def now_ms(self) -> int:
        """Caller audio taken in so far, in media time."""
        return self._endpointer.now_ms

    def use_hangover(self, ms: int) -> None:
        """The silence that ends the caller's current turn, for this pause."""
        self._endpointer.use_hangover(ms)

    def held_back(self) -> bytes:
        """The stream ended: the chunks the jitter buffer still held, in order, as whole
        frames of mu-law. Not run through VAD: only the recording takes them."""
        for ready in self._jitter.flush():
            self._pending += ready
        return bytes(self._pending[: len(self._pending) // g711.FRAME_BYTES * g711.FRAME_BYTES])

    async def close_recording(self, call_sid: str) -> None:
        """The last frames the jitter buffer held go on the record too; then it is sealed.
        Agent audio still queued at the line when the stream ended was not heard: dropped."""
        if self._recorder is None:
            return
        try:
            if tail := self.held_back():
                self._recorder.caller_frame(g711.decode(tail))
            await asyncio.to_thread(self._recorder.close)
        except Exception:
            log.exception("call %s: could not close the recording", call_sid)

    def last_turn(self) -> SpeechEnded | None:
        """The stream ended mid-turn (the caller hung up talking): that turn, closed now."""
        return self._endpointer.flush()


def joined(first: SpeechEnded | None, then: SpeechEnded | None) -> SpeechEnded | None:
    """One turn from two pieces the caller meant as one (a pause we took for an end)."""
    if first is None or then is None:
        return then or first
    return SpeechEnded(first.start_ms, then.end_ms, np.concatenate([first.audio, then.audio]))
