"""One transcription queue shared by every call: a bounded pool of worker threads, so the
event loop (and every call's inbound audio) keeps flowing while Whisper works.

Finals (a caller finished speaking: someone waits for the answer) always go first.
Speculative work (a transcript started in a pause, in case it was the end) only helps if it
is early, so under load it gives way: a guess runs only when no final waits, one that
waited longer than `stale_s` is dropped, and a guess whose turn did end is promoted to a
final where it waits. Guesses may take every worker: a final then waits for at most one
guess (~150 ms), where keeping a worker idle for finals left most guesses of a burst to go
stale, and their turns to wait for the usual hangover instead of the short one."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from media.resample import PHONE_RATE, phone_to_whisper
from transcripts.engine import Transcriber
from transcripts.heard import Expect, Heard

log = logging.getLogger(__name__)


class SpeculationDropped(Exception):
    """A speculative transcript was dropped to keep finals on time: transcribe as a final."""


@dataclass(eq=False)
class Ticket:
    """One transcription asked for; its future resolves to (heard, ms from ask to result)."""

    pcm: np.ndarray = field(repr=False)
    final: bool
    future: asyncio.Future[tuple[Heard, float]]
    loop: asyncio.AbstractEventLoop
    prompt: str | None = None  # the call's vocabulary
    expect: Expect | None = None  # what the agent just asked for
    asked: float = field(default_factory=time.perf_counter)
    state: str = "queued"  # queued, running, done, cancelled, dropped
    _scheduler: TranscriptionScheduler | None = field(default=None, repr=False)

    def promote(self) -> None:
        """Someone now waits for this guess: if it has not started, it goes with the finals."""
        if self._scheduler is not None:
            self._scheduler._promote(self)

    def cancel(self) -> None:
        """Not wanted any more: skipped if not started, its result dropped if running."""
        if self._scheduler is not None:
            self._scheduler._cancel(self)
        if not self.future.done():
            self.future.cancel()


@dataclass
class Stats:
    jobs: int = 0
    audio_s: float = 0.0
    busy_s: float = 0.0
    skipped: int = 0  # speculative jobs cancelled before they ran
    dropped: int = 0  # speculative jobs given up to keep finals on time
    promoted: int = 0  # speculative jobs that became finals while waiting

    @property
    def real_time_factor(self) -> float:
        return self.busy_s / self.audio_s if self.audio_s else 0.0


class TranscriptionScheduler:
    def __init__(
        self,
        engine: Transcriber,
        workers: int = 1,
        stale_s: float = 0.3,
        max_speculative: int | None = None,  # guesses running at once (None: every worker)
    ) -> None:
        self.engine = engine
        self.stats = Stats()
        self.stale_s = stale_s
        self._max_speculative = max_speculative or workers
        self._cond = threading.Condition()
        self._finals: deque[Ticket] = deque()
        self._guesses: deque[Ticket] = deque()
        self._running_guesses = 0
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"stt-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self,
        pcm8k: np.ndarray,
        final: bool = True,
        prompt: str | None = None,
        expect: Expect | None = None,
    ) -> Ticket:
        """Queue int16 8 kHz caller audio; the ticket's future resolves on this loop."""
        loop = asyncio.get_running_loop()
        ticket = Ticket(pcm8k, final, loop.create_future(), loop, prompt, expect, _scheduler=self)
        with self._cond:
            (self._finals if final else self._guesses).append(ticket)
            self._cond.notify()
        return ticket

    async def transcribe(
        self,
        pcm8k: np.ndarray,
        final: bool = True,
        prompt: str | None = None,
        expect: Expect | None = None,
    ) -> tuple[Heard, float]:
        """int16 8 kHz caller audio -> (what was heard, milliseconds from request to result)."""
        ticket = self.submit(pcm8k, final, prompt, expect)
        try:
            return await ticket.future
        except asyncio.CancelledError:
            ticket.cancel()
            raise

    def _promote(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.state == "queued" and not ticket.final:
                self._guesses.remove(ticket)
                ticket.final = True
                self._finals.append(ticket)
                self.stats.promoted += 1
                self._cond.notify()

    def _cancel(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.state == "queued":
                (self._finals if ticket.final else self._guesses).remove(ticket)
                ticket.state = "cancelled"
                self.stats.skipped += 1

    def _next(self) -> Ticket | None:
        """The next job to run (None: closing). Called with the condition held."""
        while True:
            if self._finals:
                return self._finals.popleft()
            while self._guesses and self._running_guesses < self._max_speculative:
                guess = self._guesses.popleft()
                if time.perf_counter() - guess.asked <= self.stale_s:
                    self._running_guesses += 1
                    return guess
                guess.state = "dropped"  # its pause is long past: it would only delay
                self.stats.dropped += 1
                guess.loop.call_soon_threadsafe(
                    _settle, guess.future, SpeculationDropped(), guess.asked
                )
            if self._closing:
                return None
            self._cond.wait()

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                if job is None:
                    return
                job.state = "running"
            started = time.perf_counter()
            try:
                result: Heard | BaseException = self.engine.transcribe(
                    phone_to_whisper(job.pcm), job.prompt, job.expect
                )
            except Exception as exc:  # a failed transcription must not kill the worker
                log.exception("transcription failed")
                result = exc
            busy = time.perf_counter() - started
            with self._cond:
                job.state = "done"
                if not job.final:
                    self._running_guesses -= 1
                    self._cond.notify()
                self.stats.jobs += 1
                self.stats.busy_s += busy
                self.stats.audio_s += len(job.pcm) / PHONE_RATE
            job.loop.call_soon_threadsafe(_settle, job.future, result, job.asked)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()


def _settle(future: asyncio.Future[tuple[Heard, float]], result: object, asked: float) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result((result, round((time.perf_counter() - asked) * 1000, 1)))  # type: ignore[arg-type]
