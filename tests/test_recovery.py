"""A process killed mid-call loses nothing said before, and leaves nothing that blocks a
deletion: lines kept as they are said, calls and recordings recovered at the next start-up.
On real SQLite and real PostgreSQL, with a real kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from storage.businesses import BusinessStore
from storage.calls import STALE_AFTER, CallStore, FinishedCall, SegmentRecord, TurnRecord
from storage.db import session_factory, utc
from storage.erasure import DELETED_NUMBER
from storage.models import Call, Recording, TranscriptSegment
from storage.privacy_deletion import delete_caller
from storage.reception import ReceptionStore
from storage.recordings import BYTES_PER_SECOND, RecordingStore, load_key
from storage.recovery import owner_alive, recover
from tests.conftest import ROOT
from tests.pg_support import KINDS, migrated_engine, postgresql_database

CALLER = "sip:customer-line-7@pbx.example.com:5060"
LINE = "+15550100200"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server, dropped afterwards."""
    with postgresql_database() as url:
        yield url


@dataclass
class World:
    url: str
    engine: Engine
    store: RecordingStore
    key_file: Path
    business: int


@pytest.fixture(params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with migrated_engine(request, tmp_path) as engine:
        key_file = tmp_path / "recording.key"
        store = RecordingStore(engine, tmp_path / "recordings", load_key(None, key_file))
        url = engine.url.render_as_string(hide_password=False)
        yield World(url, engine, store, key_file, BusinessStore(engine).list()[0]["id"])


def lines_of(w: World, call_sid: str) -> list[tuple[str, str, int, int, bool, bool]]:
    with session_factory(w.engine)() as s:
        rows = s.scalars(
            select(TranscriptSegment)
            .join(Call, TranscriptSegment.call_id == Call.id)
            .where(Call.call_sid == call_sid)
            .order_by(TranscriptSegment.seq, TranscriptSegment.id)
        ).all()
        return [
            (r.speaker, r.text, r.start_ms, r.end_ms, r.interrupted, r.provisional) for r in rows
        ]


def call_row(w: World, call_sid: str) -> Call:
    with session_factory(w.engine)() as s:
        call = s.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None
        return call


def started(w: World, call_sid: str) -> datetime:
    return utc(call_row(w, call_sid).started_at)


# ---- lines as they are said ---------------------------------------------------------------


def test_lines_are_kept_as_said_and_replaced_by_the_final_set(world: World) -> None:
    calls = CallStore(world.engine)
    calls.open_call("CAlines", world.business, CALLER, LINE)
    calls.mark_in_progress("CAlines", "MZ1")
    stream_at = started(world, "CAlines") + timedelta(seconds=2)
    greeting = SegmentRecord("agent", "Bluebird Plumbing, how can I help?", 0, 2500)
    ask = SegmentRecord("caller", "My sink is clogged.", 3000, 4200)
    assert calls.append_line("CAlines", greeting, stream_at)
    assert calls.append_line("CAlines", ask, stream_at)
    assert lines_of(world, "CAlines") == [
        ("agent", "Bluebird Plumbing, how can I help?", 2000, 4500, False, True),
        ("caller", "My sink is clogged.", 5000, 6200, False, True),
    ]
    # The final set knows what the live lines could not: the greeting was cut off.
    final = [
        SegmentRecord("agent", greeting.text, 0, 2500, True, "Bluebird Plumbing,"),
        ask,
    ]
    record = FinishedCall(
        "CAlines", "MZ1", stream_at + timedelta(seconds=5), "answered", stream_at,
        segments=final, turns=[TurnRecord(0, answered=True)], bad_messages=2,
    )  # fmt: skip
    calls.finalize(record)
    # The same record again (a late write after its wait timed out, and the journal's
    # replay of it): stored once, nothing doubled.
    calls.finalize(record)
    assert call_row(world, "CAlines").bad_messages == 2
    assert len(calls.call_json("CAlines")["turns"]) == 1
    assert lines_of(world, "CAlines") == [
        ("agent", "Bluebird Plumbing, how can I help?", 2000, 4500, True, False),
        ("caller", "My sink is clogged.", 5000, 6200, False, False),
    ]
    # A line whose write was still queued when the call ended: already in the final set.
    assert not calls.append_line("CAlines", ask, stream_at)
    assert len(lines_of(world, "CAlines")) == 2


def test_a_second_stream_keeps_the_first_streams_lines_once(world: World) -> None:
    """A message taken after an unanswered <Dial>: two streams on one call."""
    calls = CallStore(world.engine)
    calls.open_call("CAtwo", world.business, CALLER, LINE)
    t0 = started(world, "CAtwo")
    first_at, second_at = t0 + timedelta(seconds=1), t0 + timedelta(seconds=60)
    one = [SegmentRecord("agent", "Hello.", 0, 900), SegmentRecord("caller", "Gas!", 1000, 1500)]
    calls.mark_in_progress("CAtwo", "MZ1")
    for seg in one:
        calls.append_line("CAtwo", seg, first_at)
    calls.finalize(FinishedCall("CAtwo", "MZ1", t0 + timedelta(seconds=30), "handed_off",
                                first_at, segments=one))  # fmt: skip
    two = [
        SegmentRecord("agent", "Nobody answered.", 0, 900),
        SegmentRecord("caller", "Ok.", 1000, 1200),
    ]
    calls.mark_in_progress("CAtwo", "MZ2")
    for seg in two:
        calls.append_line("CAtwo", seg, second_at)
    assert [line[5] for line in lines_of(world, "CAtwo")] == [False, False, True, True]
    calls.finalize(FinishedCall("CAtwo", "MZ2", t0 + timedelta(seconds=90), "message_taken",
                                second_at, segments=two))  # fmt: skip
    assert [(line[1], line[2], line[5]) for line in lines_of(world, "CAtwo")] == [
        ("Hello.", 1000, False),
        ("Gas!", 2000, False),
        ("Nobody answered.", 60000, False),
        ("Ok.", 61000, False),
    ]
    assert call_row(world, "CAtwo").outcome == "message_taken"


# ---- a real crash -------------------------------------------------------------------------

CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from storage.calls import CallStore, SegmentRecord
    from storage.db import make_engine
    from storage.recordings import RecordingStore, load_key

    url, directory, key_file, business = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    engine = make_engine(url)
    calls = CallStore(engine)
    calls.open_call("CAcrash", business, "sip:customer-line-7@pbx.example.com:5060", "+15550100200")
    calls.mark_in_progress("CAcrash", "MZcrash")
    at = datetime.now(UTC)
    calls.append_line("CAcrash", SegmentRecord("agent", "Bluebird Plumbing.", 0, 1500), at)
    calls.append_line("CAcrash", SegmentRecord("caller", "My boiler is leaking.", 2000, 3400), at)
    store = RecordingStore(engine, Path(directory), load_key(None, Path(key_file)))
    writer = store.writer("CAcrash")
    writer.write(bytes(range(256)) * 250)  # 2 s: two sealed records on disk
    writer.write(b"\\x01" * 16000)  # half a second still in the buffer: lost
    with open(writer.path, "ab") as f:
        f.write(b"\\x00\\x00\\x7d\\x1c" + b"\\x05" * 100)  # a record cut off mid-write
    print(writer.path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def crash_mid_call(w: World) -> Path:
    done = subprocess.run(
        [sys.executable, "-c", CRASH, w.url, str(w.store.directory), str(w.key_file),
         str(w.business)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    return Path(done.stdout.strip())


def test_after_kill_9_the_call_is_closed_with_its_lines_and_recording(world: World) -> None:
    path = crash_mid_call(world)
    call = call_row(world, "CAcrash")
    assert call.status == "in_progress" and call.owner is not None
    assert not owner_alive(call.owner)
    assert world.store.for_call("CAcrash") is None and path.exists()

    # The next start-up, right away: the owner is gone, no need to wait for a grace.
    result = recover(world.engine, world.store)

    assert result["calls_closed"] == ["CAcrash"] and result["lines_kept"] == 2
    assert result["recordings_attached"] == 1
    call = call_row(world, "CAcrash")
    assert call.status == "interrupted" and call.outcome == "answered"
    t0 = started(world, "CAcrash")
    ended = utc(call.ended_at)  # type: ignore[arg-type]
    assert ended >= t0 and call.duration_s is not None and call.duration_s >= 3.4
    assert [(s, t, p) for s, t, _, _, _, p in lines_of(world, "CAcrash")] == [
        ("agent", "Bluebird Plumbing.", False),
        ("caller", "My boiler is leaking.", False),
    ]
    info = world.store.for_call("CAcrash")
    assert info is not None and info.path == path and info.duration_s == 2.0
    pcm = b"".join(world.store.pcm(info))
    assert pcm == bytes(range(256)) * 250 and len(pcm) == 2 * BYTES_PER_SECOND
    wav = b"".join(world.store.wav(info))
    assert wav[:4] == b"RIFF" and len(wav) == 44 + len(pcm)

    again = recover(world.engine, world.store)
    assert again == {"calls_closed": [], "lines_kept": 0, "recordings_attached": 0,
                     "recording_files_removed": 0}  # fmt: skip
    assert len(world.store.all_for_call("CAcrash")) == 1


def test_deleting_the_caller_of_a_crashed_call_succeeds_and_removes_lines_and_file(
    world: World,
) -> None:
    path = crash_mid_call(world)
    # Recovery has not run yet (the service is still down): deletion does not wait for it.
    result = delete_caller(world.engine, world.store, world.business, CALLER, actor="cli")
    assert result["calls_in_progress"] == 0 and result["calls_anonymized"] == 1
    assert result["transcript_segments"] == 2 and result["recording_files"] == 1
    assert not path.exists() and lines_of(world, "CAcrash") == []
    assert call_row(world, "CAcrash").from_number == DELETED_NUMBER
    # Then the service starts: the call is closed, and nothing comes back.
    closed = recover(world.engine, world.store)
    assert closed["calls_closed"] == ["CAcrash"] and closed["lines_kept"] == 0
    call = call_row(world, "CAcrash")
    assert call.status == "interrupted" and call.from_number == DELETED_NUMBER
    assert world.store.all_for_call("CAcrash") == []


# ---- which calls are dead -----------------------------------------------------------------


def test_a_live_call_is_left_alone_and_a_silent_one_closed_after_the_grace(world: World) -> None:
    calls = CallStore(world.engine)
    calls.open_call("CAlive", world.business, CALLER, LINE)
    calls.mark_in_progress("CAlive", "MZlive")  # owned by this very process
    at = started(world, "CAlive")
    calls.append_line("CAlive", SegmentRecord("caller", "Hello?", 0, 500), at)
    writer = world.store.writer("CAlive")
    writer.write(b"\x02" * BYTES_PER_SECOND)

    assert owner_alive(call_row(world, "CAlive").owner or "")
    untouched = recover(world.engine, world.store)
    assert untouched["calls_closed"] == [] and writer.path.exists()
    assert call_row(world, "CAlive").status == "in_progress"
    # Owned by a process on another host: its heartbeat is what counts.
    with session_factory(world.engine).begin() as s:
        s.execute(update(Call).where(Call.call_sid == "CAlive").values(owner="elsewhere:1:x"))
    calls.touch("CAlive")
    later = datetime.now(UTC) + STALE_AFTER - timedelta(minutes=1)
    assert recover(world.engine, world.store, now=later)["calls_closed"] == []

    much_later = datetime.now(UTC) + STALE_AFTER + timedelta(minutes=1)
    writer.close()
    os.utime(writer.path, (much_later.timestamp() - 3600, much_later.timestamp() - 3600))
    closed = recover(world.engine, world.store, now=much_later)
    assert closed["calls_closed"] == ["CAlive"] and closed["recordings_attached"] == 1
    assert call_row(world, "CAlive").status == "interrupted"
    # Its own process, still around after all, finishes: the record is not duplicated.
    assert world.store.keep("CAlive", writer) is True
    assert len(world.store.all_for_call("CAlive")) == 1


def test_outcome_from_what_was_stored(world: World) -> None:
    calls, reception = CallStore(world.engine), ReceptionStore(world.engine)
    for sid in ("CAbooked", "CAmessage", "CAhandoff", "CAanswered", "CAsilent", "CAnever"):
        calls.open_call(sid, world.business, CALLER, LINE)
        if sid != "CAnever":
            calls.mark_in_progress(sid, "MZ" + sid)
    slot = datetime(2030, 5, 7, 9, tzinfo=UTC)
    fields = {"scheduled_for": slot, "duration_minutes": 120, "name": "Maria"}
    assert reception.book(world.business, "CAbooked", 5, (slot, slot + timedelta(hours=2)), fields)
    reception.take_message(world.business, "CAmessage", {"name": "M", "text": "call back"})
    reception.hand_off(world.business, "CAhandoff", None, "emergency", "gas")
    calls.append_line("CAanswered", SegmentRecord("caller", "Hi.", 0, 300), None)
    calls.append_line("CAsilent", SegmentRecord("agent", "Hello?", 0, 300), None)

    result = recover(world.engine, world.store, owner_alive=lambda owner: False)

    assert sorted(result["calls_closed"]) == sorted(
        ["CAbooked", "CAmessage", "CAhandoff", "CAanswered", "CAsilent"]
    )  # a call still ringing with no owner waits for the grace
    outcomes = {sid: call_row(world, sid).outcome for sid in result["calls_closed"]}
    assert outcomes == {
        "CAbooked": "booked", "CAmessage": "message_taken", "CAhandoff": "handed_off",
        "CAanswered": "answered", "CAsilent": "abandoned",
    }  # fmt: skip
    later = datetime.now(UTC) + STALE_AFTER + timedelta(seconds=1)
    assert recover(world.engine, world.store, now=later)["calls_closed"] == ["CAnever"]
    never = call_row(world, "CAnever")
    assert never.status == "failed" and never.outcome == "abandoned"


def test_an_unregistered_file_of_no_call_is_removed(world: World) -> None:
    stray = world.store.writer("CAnobody")
    stray.write(b"\x03" * BYTES_PER_SECOND)
    stray.close()
    result = recover(world.engine, world.store)
    assert result["recording_files_removed"] == 1 and not stray.path.exists()


def test_deleting_during_a_live_call_keeps_nothing_it_says_afterwards(world: World) -> None:
    calls = CallStore(world.engine)
    calls.open_call("CAnow", world.business, CALLER, LINE)
    calls.mark_in_progress("CAnow", "MZnow")
    at = started(world, "CAnow")
    calls.append_line("CAnow", SegmentRecord("caller", "I live at 4 Pine Lane.", 0, 900), at)
    writer = world.store.writer("CAnow")
    writer.write(b"\x04" * BYTES_PER_SECOND * 2)

    result = delete_caller(world.engine, world.store, world.business, CALLER, actor="cli")
    assert result["calls_in_progress"] == 1 and result["transcript_segments"] == 1
    assert result["recording_files"] == 1 and not writer.path.exists()
    # The call goes on, then ends as usual.
    assert not calls.append_line("CAnow", SegmentRecord("caller", "Mine: 555.", 1000, 1900), at)
    writer.write(b"\x04" * BYTES_PER_SECOND)
    writer.close()
    assert world.store.keep("CAnow", writer) is False
    calls.finalize(
        FinishedCall("CAnow", "MZnow", at + timedelta(seconds=20), "answered", at,
                     segments=[SegmentRecord("caller", "I live at 4 Pine Lane.", 0, 900)],
                     turns=[TurnRecord(0, answered=True)])
    )  # fmt: skip
    call = call_row(world, "CAnow")
    assert call.status == "completed" and call.from_number == DELETED_NUMBER
    assert lines_of(world, "CAnow") == [] and world.store.all_for_call("CAnow") == []
    with session_factory(world.engine)() as s:
        assert s.scalar(select(Recording.id)) is None


def test_a_final_record_from_the_journal_after_recovery_replaces_the_recovered_lines(
    world: World,
) -> None:
    """The database was down as the call ended (its record went to the journal) and the
    process died before replaying it: recovery closes the call from its live lines, then
    the journal's record, which knows more, replaces them without duplicating any."""
    calls = CallStore(world.engine)
    calls.open_call("CAjournal", world.business, CALLER, LINE)
    calls.mark_in_progress("CAjournal", "MZj")
    at = started(world, "CAjournal")
    said = [SegmentRecord("agent", "Hello, Bluebird.", 0, 900),
            SegmentRecord("caller", "Book me in.", 1000, 1800)]  # fmt: skip
    for seg in said:
        calls.append_line("CAjournal", seg, at)
    assert recover(world.engine, world.store, owner_alive=lambda owner: False)["lines_kept"] == 2
    final = [SegmentRecord("agent", "Hello, Bluebird.", 0, 900, True, "Hello,"), said[1]]
    calls.finalize(FinishedCall("CAjournal", "MZj", at + timedelta(seconds=9), "answered", at,
                                segments=final))  # fmt: skip
    assert lines_of(world, "CAjournal") == [
        ("agent", "Hello, Bluebird.", 0, 900, True, False),
        ("caller", "Book me in.", 1000, 1800, False, False),
    ]
    assert call_row(world, "CAjournal").status == "completed"


def test_a_call_held_on_another_host_is_closed_once_its_worker_stops_beating(
    world: World,
) -> None:
    """Workers on other machines cannot be checked by pid: their beat in the shared live
    state says whether they run. A lapsed beat alone is not enough (a worker cut off from
    Redis still writes its heartbeats to the database): the call must also be quiet."""
    calls = CallStore(world.engine, owner="other-host:4242:abcdef")
    calls.open_call("CAelsewhere", world.business, CALLER, LINE)
    calls.mark_in_progress("CAelsewhere", "MZelsewhere")
    calls.append_line("CAelsewhere", SegmentRecord("caller", "My sink.", 0, 900), None)
    quiet = timedelta(seconds=45)
    beats: dict[str, bool | None] = {"other-host:4242:abcdef": True}

    def alive(owner: str) -> bool:
        return owner_alive(owner, beats.get)

    soon = datetime.now(UTC) + quiet + timedelta(seconds=1)
    assert (
        recover(world.engine, world.store, owner_alive=alive, owner_quiet=quiet, now=soon)[
            "calls_closed"
        ]
        == []
    )  # still beating
    beats["other-host:4242:abcdef"] = None  # Redis unreachable: cannot tell, so alive
    assert (
        recover(world.engine, world.store, owner_alive=alive, owner_quiet=quiet, now=soon)[
            "calls_closed"
        ]
        == []
    )
    beats["other-host:4242:abcdef"] = False  # its beat lapsed...
    now = datetime.now(UTC)
    assert (
        recover(world.engine, world.store, owner_alive=alive, owner_quiet=quiet, now=now)[
            "calls_closed"
        ]
        == []
    )  # ...but it wrote a line just now
    closed = recover(world.engine, world.store, owner_alive=alive, owner_quiet=quiet, now=soon)
    assert closed["calls_closed"] == ["CAelsewhere"]
    row = call_row(world, "CAelsewhere")
    assert row.status == "interrupted" and row.outcome == "answered"
    assert lines_of(world, "CAelsewhere")[0][:2] == ("caller", "My sink.")
