"""Retention: only what is older than each business's retention is purged, once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from storage.businesses import BusinessStore
from storage.db import make_engine, session_factory, upgrade
from storage.models import AuditEntry, Business, Call, Recording, SmsMessage, TranscriptSegment
from storage.recordings import RecordingInfo, RecordingStore, load_key
from storage.retention import purge, run_daily
from storage.sms_log import SmsLog
from tests.test_privacy import CALLER, RUN_CLI, make_call, make_recording

NOW = datetime(2031, 3, 1, 12, tzinfo=UTC)


@dataclass
class World:
    engine: Engine
    store: RecordingStore
    data: Path
    a: int  # recordings 30 days, transcripts 365 days (the defaults)
    b: int  # recordings 7 days, transcripts 30 days


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path}/voice-agent.db")
    upgrade(engine)
    store = RecordingStore(
        engine, tmp_path / "recordings", load_key(None, tmp_path / "recording.key")
    )
    a = BusinessStore(engine).list()[0]["id"]
    b = BusinessStore(engine).add("Quick Electric", "+15550100300", "UTC")
    with session_factory(engine).begin() as s:
        s.execute(
            update(Business)
            .where(Business.id == b)
            .values(recording_retention_days=7, transcript_retention_days=30)
        )
    yield World(engine, store, tmp_path, a, b)
    engine.dispose()


def aged_call(
    w: World, business_id: int, call_sid: str, age: timedelta, now: datetime = NOW
) -> RecordingInfo:
    """A call with transcript, a recording and an SMS, all made `age` before `now`."""
    make_call(w.engine, business_id, call_sid, CALLER, ["Hello.", f"Fix it, {call_sid}."])
    info = make_recording(w.store, call_sid)
    body = f"Booked {call_sid}"
    SmsLog(w.engine).log(
        business_id, CALLER, "booking_confirmation", body, "sent", call_sid=call_sid
    )
    when = now - age
    with session_factory(w.engine).begin() as s:
        call = s.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None
        call.started_at, call.ended_at = when, when + timedelta(minutes=2)
        s.execute(update(Recording).where(Recording.id == info.id).values(created_at=when))
        s.execute(update(SmsMessage).where(SmsMessage.call_sid == call_sid).values(created_at=when))
    return info


def state(w: World, call_sid: str) -> tuple[bool, int, str]:
    """(recording row exists, transcript lines, SMS body) of one call."""
    with session_factory(w.engine)() as s:
        call = s.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None  # calls themselves are never purged
        has_recording = s.scalar(select(Recording.id).where(Recording.call_id == call.id))
        lines = s.scalars(
            select(TranscriptSegment.id).where(TranscriptSegment.call_id == call.id)
        ).all()
        body = s.scalar(select(SmsMessage.body).where(SmsMessage.call_sid == call_sid))
        return has_recording is not None, len(lines), body or ""


def audit(w: World) -> list[AuditEntry]:
    with session_factory(w.engine)() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "retention_purge")
                .order_by(AuditEntry.business_id)
            )
        )


def test_purge_removes_only_what_is_older_than_each_businesss_retention(world: World) -> None:
    day = timedelta(days=1)
    files = {
        "CAa-fresh": aged_call(world, world.a, "CAa-fresh", 29 * day),
        "CAa-month": aged_call(world, world.a, "CAa-month", 31 * day),
        "CAa-year": aged_call(world, world.a, "CAa-year", 366 * day),
        "CAb-fresh": aged_call(world, world.b, "CAb-fresh", 6 * day),
        "CAb-week": aged_call(world, world.b, "CAb-week", 8 * day),
        "CAb-month": aged_call(world, world.b, "CAb-month", 31 * day),
    }

    summary = purge(world.engine, world.store, now=NOW)

    expected = {  # recording kept, transcript lines, SMS body kept
        "CAa-fresh": (True, 2, True),
        "CAa-month": (False, 2, True),
        "CAa-year": (False, 0, False),
        "CAb-fresh": (True, 2, True),
        "CAb-week": (False, 2, True),
        "CAb-month": (False, 0, False),
    }
    for sid, (recording, lines, body) in expected.items():
        assert state(world, sid) == (recording, lines, f"Booked {sid}" if body else ""), sid
        assert files[sid].path.exists() == recording, sid

    by_business = {b["business_id"]: b for b in summary["businesses"]}
    assert by_business[world.a] == {
        "business_id": world.a,
        "recording_retention_days": 30,
        "transcript_retention_days": 365,
        "recordings": 2,
        "recording_files": 2,
        "transcript_segments": 2,
        "sms_bodies": 1,
    }
    assert by_business[world.b]["recordings"] == 2
    assert by_business[world.b]["transcript_segments"] == 2
    assert summary["totals"] == {
        "recordings": 4,
        "recording_files": 4,
        "transcript_segments": 4,
        "sms_bodies": 2,
        "orphan_files": 0,
        "parked_webhooks": 0,
    }
    entries = audit(world)
    assert [(e.business_id, e.actor) for e in entries] == [(world.a, "system"), (world.b, "system")]
    assert entries[0].detail["recordings"] == 2 and entries[0].detail["sms_bodies"] == 1
    assert entries[1].detail["transcript_retention_days"] == 30

    # Idempotent: nothing more to purge, nothing more written.
    again = purge(world.engine, world.store, now=NOW)
    assert set(again["totals"].values()) == {0}
    assert len(audit(world)) == 2
    assert state(world, "CAa-fresh") == (True, 2, "Booked CAa-fresh")


def test_a_missing_file_does_not_stop_the_purge(world: World) -> None:
    info = aged_call(world, world.a, "CAgone", timedelta(days=40))
    info.path.unlink()
    summary = purge(world.engine, world.store, now=NOW)
    assert summary["totals"]["recordings"] == 1 and summary["totals"]["recording_files"] == 0
    assert state(world, "CAgone")[0] is False


def test_unregistered_files_go_once_older_than_any_retention(world: World) -> None:
    day = world.store.directory / "2031" / "01" / "01"
    day.mkdir(parents=True)
    old, recent = day / "CAcrashed-0001.rec", day / "CArecording-0002.rec"
    for path, age in ((old, timedelta(days=31)), (recent, timedelta(hours=1))):
        path.write_bytes(b"VAREC1\n")
        t = (NOW - age).timestamp()
        os.utime(path, (t, t))
    kept = aged_call(world, world.a, "CAkept", timedelta(days=1))
    os.utime(kept.path, (0, 0))  # registered: age on disk does not matter, the row's does
    summary = purge(world.engine, world.store, now=NOW)
    assert summary["totals"]["orphan_files"] == 1
    assert not old.exists() and recent.exists() and kept.path.exists()


async def test_run_daily_purges_in_the_background(world: World) -> None:
    info = aged_call(world, world.a, "CAold", timedelta(days=400), now=datetime.now(UTC))
    task = asyncio.create_task(run_daily(world.engine, world.store, first_delay_s=0))
    try:
        # The file goes before the rows do: wait for everything the assertion checks.
        def purged() -> bool:
            return not info.path.exists() and state(world, "CAold") == (False, 0, "")

        for _ in range(1200):  # a minute at least
            if purged():
                break
            await asyncio.sleep(0.05)
        assert not info.path.exists() and state(world, "CAold") == (False, 0, "")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_cli_purge(world: World) -> None:
    aged_call(world, world.b, "CAcli", timedelta(days=10), now=datetime.now(UTC))
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(world.data)}
    env.pop("DATABASE_URL", None)
    env.pop("RECORDING_KEY", None)
    run = [sys.executable, "-c", RUN_CLI, "purge"]
    done = subprocess.run([*run, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["recordings"] == 1
    text = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0 and f"business {world.b}: 0 recordings" in text.stdout


def test_without_a_recording_store_transcripts_are_still_purged(world: World) -> None:
    info = aged_call(world, world.b, "CAnorec", timedelta(days=40))
    summary = purge(world.engine, None, now=NOW)
    assert summary["totals"]["transcript_segments"] == 2 and summary["totals"]["recordings"] == 0
    assert state(world, "CAnorec") == (True, 0, "") and info.path.exists()


class _Stop(Exception):
    """Ends a run_daily loop from its injected sleep."""


async def test_a_failed_purge_is_retried_soon_with_backoff_then_daily_again(
    tmp_path: Path,
) -> None:
    """The database is unreachable for the first runs (a SQLite file in a directory that
    does not exist yet): retries come after 1, 2, 4 minutes, not a day later; once a run
    succeeds the loop is back to daily."""
    db_dir = tmp_path / "not-yet"
    engine = make_engine(f"sqlite:///{db_dir}/voice-agent.db")
    slept: list[float] = []
    purged: list[str] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 4:  # the outage ends during the third retry's wait
            db_dir.mkdir()
            upgrade(engine)
            make_call(engine, BusinessStore(engine).list()[0]["id"], "CAback", CALLER, ["Hi."])
            with session_factory(engine).begin() as s:
                old = datetime.now(UTC) - timedelta(days=400)
                s.execute(update(Call).where(Call.call_sid == "CAback").values(started_at=old))
        if len(slept) == 5:
            with session_factory(engine)() as s:
                lines = s.scalars(select(TranscriptSegment.id)).all()
            purged.append("purged" if not lines else "kept")
        if len(slept) == 6:
            raise _Stop

    try:
        with pytest.raises(_Stop):
            await run_daily(engine, None, first_delay_s=60, sleep=sleep)
    finally:
        engine.dispose()
    assert slept == [60, 60, 120, 240, 24 * 3600.0, 24 * 3600.0]
    assert purged == ["purged"]


async def test_retries_back_off_to_an_hour_and_never_wait_past_the_next_daily_run(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/missing/dir/voice-agent.db")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 10:
            raise _Stop

    with pytest.raises(_Stop):
        await run_daily(engine, None, first_delay_s=0, sleep=sleep)
    assert slept == [0, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]

    slept.clear()
    with pytest.raises(_Stop):
        await run_daily(engine, None, interval_s=300, first_delay_s=0, sleep=sleep)
    assert slept == [0, 60, 120, 240, 300, 300, 300, 300, 300, 300]
    engine.dispose()
