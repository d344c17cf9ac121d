"""Lines stored as they are said: a flush that gave up waiting (the database stalled) must
not end the writer. Before, the writer set the result of the flush's cancelled future,
raised, and stored no line again for the rest of the process."""

from __future__ import annotations

import threading

from storage.calls import SegmentRecord
from tests.calling import eventually
from voice_agent.call.line_writer import LineWriter


async def test_a_flush_that_timed_out_leaves_the_writer_writing() -> None:
    stalled = threading.Event()
    stored: list[str] = []

    def append(call_sid: str, segment: SegmentRecord, _started: object) -> None:
        if segment.text == "first":
            stalled.wait(30)  # a database that stopped answering, then came back
        stored.append(segment.text)

    writer = LineWriter(append)
    writer.add("CA1", SegmentRecord("caller", "first", 0, 10), None)
    assert await writer.flush(timeout_s=0.2) is False, "the flush gives up on the stall"
    stalled.set()
    writer.add("CA1", SegmentRecord("caller", "second", 10, 20), None)
    assert await eventually(lambda: stored == ["first", "second"]), stored
    assert await writer.flush(timeout_s=30) is True, "and flushes again once it is back"
    writer.close()
