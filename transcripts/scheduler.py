"""One transcription queue shared by every call: a bounded pool of worker threads, finals
before speculative work, so the event loop (and every call's inbound audio) keeps flowing
while Whisper works, and a caller who finished speaking is never behind a guess."""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from media.resample import PHONE_RATE, phone_to_whisper
from transcripts.engine import Transcriber

log = logging.getLogger(__name__)

FINAL, SPECULATIVE = 0, 1


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    pcm: np.ndarray = field(compare=False)
    future: asyncio.Future[tuple[str, float]] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


@dataclass
class Stats:
    jobs: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0
    skipped: int = 0  # speculative jobs dropped before they ran

    @property
    def real_time_factor(self) -> float:
        return self.busy_s / self.audio_s if self.audio_s else 0.0


class TranscriptionScheduler:
    def __init__(self, engine: Transcriber, workers: int = 1) -> None:
        self.engine = engine
        self.stats = Stats()
        self._stats_lock = threading.Lock()  # several workers add to it
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"stt-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    async def transcribe(self, pcm8k: np.ndarray, final: bool = True) -> tuple[str, float]:
        """int16 8 kHz caller audio -> (text, milliseconds from request to result)."""
        loop = asyncio.get_running_loop()
        job = _Job(FINAL if final else SPECULATIVE, next(self._seq), pcm8k,
                   loop.create_future(), loop)  # fmt: skip
        started = time.perf_counter()
        self._queue.put(job)
        try:
            text, _ = await job.future
        except asyncio.CancelledError:
            job.cancelled = True  # not started yet: skipped; running: its result is dropped
            raise
        return text, round((time.perf_counter() - started) * 1000, 1)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job.pcm is None:  # close(): queued after all real work
                return
            if job.cancelled:
                with self._stats_lock:
                    self.stats.skipped += 1
                continue
            started = time.perf_counter()
            try:
                result: tuple[str, float] | BaseException = (
                    self.engine.transcribe(phone_to_whisper(job.pcm)),
                    0.0,
                )
            except Exception as exc:  # a failed transcription must not kill the worker
                log.exception("transcription failed")
                result = exc
            busy = time.perf_counter() - started
            with self._stats_lock:
                self.stats.jobs += 1
                self.stats.busy_s += busy
                self.stats.audio_s += len(job.pcm) / PHONE_RATE
            job.loop.call_soon_threadsafe(_settle, job.future, result)

    def close(self) -> None:
        for _ in self._threads:
            stop = _Job(99, next(self._seq), None, None, None)  # type: ignore[arg-type]
            self._queue.put(stop)


def _settle(future: asyncio.Future[tuple[str, float]], result: object) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)  # type: ignore[arg-type]
