"""Transcript lines stored as they are said, so that a crashed process loses none of them.

These writes are a safety net: the finished call (or its journal entry) is the full record.
So they never wait on the call: one background thread for the whole process, a bounded
queue, and after a failure (database down or partitioned) a pause in which lines are
skipped instead of piling up behind timeouts."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from storage.calls import SegmentRecord

log = logging.getLogger(__name__)

AppendLine = Callable[[str, SegmentRecord, datetime | None], object]


@dataclass(frozen=True)
class _Line:
    call_sid: str
    segment: SegmentRecord
    stream_started_at: datetime | None


class LineWriter:
    def __init__(self, append: AppendLine, capacity: int = 2000, pause_s: float = 10.0) -> None:
        self._append = append
        self._queue: queue.Queue[_Line | Future[None] | None] = queue.Queue(capacity)
        self._pause_s = pause_s
        self._paused_until = 0.0
        self.skipped = 0
        self._thread = threading.Thread(target=self._work, name="transcript-lines", daemon=True)
        self._thread.start()

    def add(self, call_sid: str, segment: SegmentRecord, started: datetime | None) -> None:
        """Never blocks: a full queue or a paused writer skips the line (and counts it)."""
        if time.monotonic() < self._paused_until:
            self.skipped += 1
            return
        try:
            self._queue.put_nowait(_Line(call_sid, segment, started))
        except queue.Full:
            self.skipped += 1

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every line queued so far is written (or skipped). False on timeout."""
        done: Future[None] = Future()
        try:
            self._queue.put_nowait(done)
        except queue.Full:
            return False
        try:
            await asyncio.wait_for(asyncio.wrap_future(done), timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, Future):
                # A flush that gave up waiting cancelled its future: setting it then would
                # raise, and end this thread for the rest of the process.
                if item.set_running_or_notify_cancel():
                    item.set_result(None)
                continue
            if time.monotonic() < self._paused_until:
                self.skipped += 1
                continue
            try:
                self._append(item.call_sid, item.segment, item.stream_started_at)
            except Exception as exc:
                self.skipped += 1
                self._paused_until = time.monotonic() + self._pause_s
                log.warning(
                    "transcript lines not stored as they happen for %.0f s: %s",
                    self._pause_s,
                    type(exc).__name__,
                )
