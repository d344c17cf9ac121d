"""Speech synthesis threads of their own, answers' first words first.

In asyncio's shared pool synthesis queued behind database calls that a partitioned database
held for seconds; in a plain pool, when several calls answer at once, one call's third
sentence delays another call's first. The first audio of an answer is what the caller waits
for in silence; the rest is wanted only by the time the audio before it has played."""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

FIRST, LATER = 0, 1


class SynthPool:
    def __init__(self, workers: int = 2) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"tts-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    async def run(self, fn: Callable[..., T], *args: Any, first: bool = False) -> T:
        future: Future[T] = Future()
        self._queue.put((FIRST if first else LATER, next(self._seq), (future, fn, args)))
        return await asyncio.wrap_future(future)

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue  # its caller stopped waiting (a barge-in): not synthesized
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # the caller gets it; the thread goes on
                future.set_exception(exc)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put((LATER + 1, next(self._seq), None))
