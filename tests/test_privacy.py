"""A caller's data on request: export and deletion, on a real SQLite database with real
encrypted recordings, scoped to one number at one business."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from storage.businesses import BusinessStore
from storage.calls import CallStore, FinishedCall, SegmentRecord, TurnRecord
from storage.consent import ConsentStore
from storage.db import make_engine, session_factory, upgrade
from storage.erasure import DELETED_NUMBER
from storage.models import (
    AuditEntry,
    Booking,
    Call,
    ConsentRecord,
    Handoff,
    Message,
    Recording,
    SmsMessage,
    TranscriptSegment,
    Turn,
)
from storage.phone_refs import phone_ref
from storage.privacy_deletion import caller_summary, delete_caller
from storage.privacy_export import export_caller, write_export
from storage.reception import ReceptionStore
from storage.recordings import RecordingInfo, RecordingStore, load_key
from storage.sms_log import SmsLog

CALLER = "+15555550123"
OTHER_CALLER = "+15555550999"
DISPATCHER = "+15550100299"


@dataclass
class World:
    engine: Engine
    store: RecordingStore
    data: Path
    a: int  # the business the caller asks
    b: int  # another business the same caller also called


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path}/voice-agent.db")
    upgrade(engine)
    store = RecordingStore(
        engine, tmp_path / "recordings", load_key(None, tmp_path / "recording.key")
    )
    a = BusinessStore(engine).list()[0]["id"]
    b = BusinessStore(engine).add("Other Plumbing", "+15550100999", "UTC")
    w = World(engine, store, tmp_path, a, b)
    populate(w)
    yield w
    engine.dispose()


def make_call(
    engine: Engine,
    business_id: int,
    call_sid: str,
    caller: str,
    lines: list[str],
    outcome: str = "answered",
) -> None:
    calls = CallStore(engine)
    line = "+15550100200"
    calls.open_call(call_sid, business_id, caller, line)
    now = datetime.now(UTC)
    calls.finalize(
        FinishedCall(
            call_sid=call_sid,
            stream_sid="MZ" + call_sid,
            ended_at=now + timedelta(seconds=30),
            outcome=outcome,
            segments=[
                SegmentRecord("caller" if i % 2 else "agent", text, i * 1000, i * 1000 + 900)
                for i, text in enumerate(lines)
            ],
            turns=[TurnRecord(i, answered=True, latency_ms=900.0) for i in range(len(lines) // 2)],
        )
    )


def make_recording(store: RecordingStore, call_sid: str, seconds: float = 1.5) -> RecordingInfo:
    writer = store.writer(call_sid)
    pcm = bytes((i * 7) % 251 for i in range(int(seconds * 32000)))
    writer.write(pcm)
    writer.close()
    store.save(call_sid, writer)
    info = store.for_call(call_sid)
    assert info is not None
    return info


def populate(w: World) -> None:
    reception, consent, sms = ReceptionStore(w.engine), ConsentStore(w.engine), SmsLog(w.engine)
    make_call(
        w.engine,
        w.a,
        "CAcaller1",
        CALLER,
        ["Bluebird Plumbing, how can I help?", "My kitchen sink is clogged at 12 Oak Street."],
        "booked",
    )
    make_call(
        w.engine,
        w.a,
        "CAcaller2",
        CALLER,
        ["Bluebird Plumbing, how can I help?", "I smell gas, please hurry, this is Maria."],
        "handed_off",
    )
    make_call(
        w.engine,
        w.a,
        "CAother1",
        OTHER_CALLER,
        ["Bluebird Plumbing, how can I help?", "James here, my furnace is out at 9 Elm Road."],
        "message_taken",
    )
    make_call(
        w.engine,
        w.b,
        "CAbiz2",
        CALLER,
        ["Other Plumbing, hello.", "My water heater leaks at 12 Oak Street."],
    )
    for sid in ("CAcaller1", "CAother1", "CAbiz2"):
        make_recording(w.store, sid)

    slot = datetime(2030, 5, 7, 9, tzinfo=UTC)
    booking = {
        "scheduled_for": slot,
        "duration_minutes": 120,
        "service": "Drain cleaning",
        "name": "Maria Lopez",
        "phone": CALLER,
        "address": "12 Oak Street",
        "problem": "clogged kitchen sink",
    }
    assert reception.book(w.a, "CAcaller1", 5, (slot, slot + timedelta(hours=2)), booking)
    other_booking = {
        **booking,
        "name": "James Doe",
        "phone": OTHER_CALLER,
        "address": "9 Elm Road",
        "problem": "furnace out",
    }
    assert reception.book(w.a, "CAother1", 5, (slot, slot + timedelta(hours=2)), other_booking)
    assert reception.book(w.b, "CAbiz2", 5, (slot, slot + timedelta(hours=2)), booking)
    reception.take_message(
        w.a,
        "CAcaller2",
        {"name": "Maria", "callback_number": CALLER, "reason": "gas smell", "text": "call back"},
    )
    reception.take_message(
        w.a,
        "CAother1",
        {"name": "James", "callback_number": OTHER_CALLER, "reason": "furnace", "text": "x"},
    )
    reception.hand_off(w.a, "CAcaller2", None, "emergency", "Maria smells gas at 12 Oak Street")

    consent.record(w.a, CALLER, True, "call", "Can we text you a confirmation?", "CAcaller1")
    consent.record(w.a, CALLER, False, "sms_keyword", "STOP")
    consent.record(w.a, OTHER_CALLER, True, "call", "Can we text you?", "CAother1")
    consent.record(w.b, CALLER, True, "call", "Can we text you?", "CAbiz2")

    for business, to, purpose, body, sid, call_sid in (
        (w.a, CALLER, "booking_confirmation", "Booked at 12 Oak Street", "SM1", "CAcaller1"),
        (w.a, DISPATCHER, "dispatcher_alert", f"call from {CALLER}: gas", "SM2", "CAcaller2"),
        (w.a, OTHER_CALLER, "booking_confirmation", "Booked at 9 Elm Road", "SM3", "CAother1"),
        (w.b, CALLER, "booking_confirmation", "Other: booked at 12 Oak Street", "SM4", "CAbiz2"),
    ):
        sms.log(business, to, purpose, body, "sent", twilio_sid=sid, call_sid=call_sid)


def count(engine: Engine, model: type, *where: object) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def call_ids(engine: Engine, *sids: str) -> list[int]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(Call.id).where(Call.call_sid.in_(sids))))


def audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# ---- export -------------------------------------------------------------------------------


def test_export_holds_everything_about_the_caller_and_nothing_else(world: World) -> None:
    data = export_caller(world.engine, world.store, world.a, CALLER, actor="cli")
    json.dumps(data)  # JSON-able as it is
    assert data["phone"] == CALLER and data["business"]["id"] == world.a
    assert [c["call_sid"] for c in data["calls"]] == ["CAcaller1", "CAcaller2"]
    first = data["calls"][0]
    assert first["outcome"] == "booked" and first["started_at"] and first["ended_at"]
    assert [t["text"] for t in first["transcript"]][1].startswith("My kitchen sink")
    assert first["turns"] == [
        {
            "index": 0,
            "answered": True,
            "latency_ms": 900.0,
            "endpoint_ms": None,
            "transcribe_ms": None,
            "policy_ms": None,
            "tts_ms": None,
            "send_ms": None,
            "hangover_ms": None,
        }
    ]
    [booking] = data["bookings"]
    assert booking["call_sid"] == "CAcaller1" and booking["address"] == "12 Oak Street"
    assert booking["name"] == "Maria Lopez" and booking["status"] == "confirmed"
    [message] = data["messages"]
    assert message["call_sid"] == "CAcaller2" and message["reason"] == "gas smell"
    [handoff] = data["handoffs"]
    assert handoff["call_sid"] == "CAcaller2" and "gas" in handoff["summary"]
    assert [(r["opt_in"], r["source"]) for r in data["consent_records"]] == [
        (True, "call"),
        (False, "sms_keyword"),
    ]
    assert [m["body"] for m in data["sms_messages"]] == ["Booked at 12 Oak Street"]
    [rec] = data["recordings"]
    assert rec["call_sid"] == "CAcaller1" and rec["file"] == "CAcaller1.wav"
    assert rec["duration_s"] == 1.5 and rec["bytes"] > 48000

    text = json.dumps(data)
    for foreign in (OTHER_CALLER, "James", "Elm Road", "furnace", "CAother1", "CAbiz2", "Other"):
        assert foreign not in text, foreign
    assert DISPATCHER not in text  # the dispatcher's number is not the caller's data

    [entry] = audit(world.engine, "export_caller")
    assert entry.actor == "cli" and entry.business_id == world.a
    assert entry.target == phone_ref(world.store.key, world.a, CALLER)
    assert CALLER not in json.dumps([entry.target, entry.detail])
    assert entry.detail == {"calls": 2, "recordings": 1}


def test_export_is_per_business(world: World) -> None:
    data = export_caller(world.engine, world.store, world.b, CALLER)
    assert [c["call_sid"] for c in data["calls"]] == ["CAbiz2"]
    assert [m["body"] for m in data["sms_messages"]] == ["Other: booked at 12 Oak Street"]
    assert len(data["consent_records"]) == 1 and len(data["bookings"]) == 1
    assert "Bluebird" not in json.dumps(data["calls"])


def test_export_file_and_decrypted_recordings(world: World) -> None:
    out = world.data / "export" / "caller.json"
    data = write_export(world.engine, world.store, world.a, CALLER, out)
    assert json.loads(out.read_text()) == data
    wav = out.with_name("caller.json.recordings") / "CAcaller1.wav"
    info = world.store.for_call("CAcaller1")
    assert info is not None
    assert wav.read_bytes() == b"".join(world.store.wav(info))
    assert wav.read_bytes()[:4] == b"RIFF" and len(wav.read_bytes()) == 44 + 48000
    for path in (out, wav):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in wav.parent.iterdir()] == ["CAcaller1.wav"]


def test_export_lists_an_unreadable_recording_instead_of_failing(world: World) -> None:
    info = world.store.for_call("CAcaller1")
    assert info is not None
    info.path.unlink()
    out = world.data / "caller.json"
    data = write_export(world.engine, world.store, world.a, CALLER, out)
    [rec] = data["recordings"]
    assert rec["file"] is None and "FileNotFoundError" in rec["error"]
    assert json.loads(out.read_text())["recordings"] == [rec]


def test_export_of_an_unknown_business_is_an_error(world: World) -> None:
    with pytest.raises(LookupError):
        export_caller(world.engine, world.store, 999, CALLER)


# ---- deletion -----------------------------------------------------------------------------


def test_delete_removes_the_callers_data_and_keeps_consent(world: World) -> None:
    e = world.engine
    mine = call_ids(e, "CAcaller1", "CAcaller2")
    recording = world.store.for_call("CAcaller1")
    other_rec, biz_rec = world.store.for_call("CAother1"), world.store.for_call("CAbiz2")
    assert recording and other_rec and biz_rec and recording.path.exists()
    consent_before = count(e, ConsentRecord)
    preview = caller_summary(e, world.a, CALLER)
    assert preview == {
        "calls": 2,
        "calls_in_progress": 0,
        "transcript_segments": 4,
        "turns": 2,
        "recordings": 1,
        "messages": 1,
        "bookings": 1,
        "handoffs": 1,
        "sms_messages": 2,
        "consent_records_kept": 2,
    }

    result = delete_caller(e, world.store, world.a, CALLER, actor="user:7")

    assert result == {
        "business_id": world.a,
        "calls_anonymized": 2,
        "calls_in_progress": 0,
        "recordings": 1,
        "recording_files": 1,
        "transcript_segments": 4,
        "turns": 2,
        "messages": 1,
        "bookings_redacted": 1,
        "handoffs_redacted": 1,
        "sms_bodies_blanked": 2,
        "consent_records_kept": 2,
    }
    # Gone: transcripts, turns, the recording (file and row), the message.
    assert count(e, TranscriptSegment, TranscriptSegment.call_id.in_(mine)) == 0
    assert count(e, Turn, Turn.call_id.in_(mine)) == 0
    assert not recording.path.exists() and count(e, Recording, Recording.id == recording.id) == 0
    assert count(e, Message, Message.call_id.in_(mine)) == 0
    with session_factory(e)() as s:
        # Calls stay as anonymous statistics.
        calls = s.scalars(select(Call).where(Call.id.in_(mine))).all()
        assert {c.from_number for c in calls} == {DELETED_NUMBER}
        assert {c.outcome for c in calls} == {"booked", "handed_off"}
        assert all(c.duration_s is not None for c in calls)
        booking = s.scalar(select(Booking).where(Booking.call_id == mine[0]))
        assert booking is not None and booking.status == "confirmed"
        assert (booking.name, booking.phone, booking.address, booking.problem) == (None,) * 4
        assert booking.service == "Drain cleaning"
        handoff = s.scalar(select(Handoff).where(Handoff.call_id == mine[1]))
        assert handoff is not None and handoff.summary is None and handoff.reason == "emergency"
        bodies = dict(s.execute(select(SmsMessage.twilio_sid, SmsMessage.body)).all())
        assert bodies["SM1"] == "" and bodies["SM2"] == ""  # to them, and about their call
        assert bodies["SM3"] == "Booked at 9 Elm Road"
        assert bodies["SM4"] == "Other: booked at 12 Oak Street"
        # Consent and opt-out records are kept as they were.
        kept = s.scalars(
            select(ConsentRecord).where(
                ConsentRecord.business_id == world.a, ConsentRecord.phone == CALLER
            )
        ).all()
        assert [(r.opt_in, r.wording) for r in kept] == [
            (True, "Can we text you a confirmation?"),
            (False, "STOP"),
        ]
    assert count(e, ConsentRecord) == consent_before
    assert not ConsentStore(e).has_opt_in(world.a, CALLER)

    [entry] = audit(e, "delete_caller")
    assert entry.actor == "user:7" and entry.business_id == world.a
    assert entry.target == phone_ref(world.store.key, world.a, CALLER)
    assert CALLER not in json.dumps([entry.target, entry.detail])
    assert CALLER.lstrip("+") not in (entry.target or "")
    assert entry.detail["transcript_segments"] == 4 and entry.detail["recordings"] == 1

    # Another caller of the same business: untouched.
    [other] = call_ids(e, "CAother1")
    assert count(e, TranscriptSegment, TranscriptSegment.call_id == other) == 2
    assert other_rec.path.exists() and count(e, Recording, Recording.id == other_rec.id) == 1
    assert count(e, Message, Message.call_id == other) == 1
    assert count(e, Booking, Booking.call_id == other, Booking.name == "James Doe") == 1
    # The same caller at another business: untouched.
    [biz] = call_ids(e, "CAbiz2")
    assert count(e, Call, Call.id == biz, Call.from_number == CALLER) == 1
    assert count(e, TranscriptSegment, TranscriptSegment.call_id == biz) == 2
    assert biz_rec.path.exists()
    assert count(e, Booking, Booking.call_id == biz, Booking.phone == CALLER) == 1
    assert ConsentStore(e).has_opt_in(world.b, CALLER)

    # What an export shows now: no calls, the consent proof, the SMS log without texts.
    after = export_caller(e, world.store, world.a, CALLER)
    assert after["calls"] == [] and after["recordings"] == [] and after["messages"] == []
    assert len(after["consent_records"]) == 2
    assert [m["body"] for m in after["sms_messages"]] == [""]
    assert "Oak" not in json.dumps(after)


def test_delete_twice_changes_nothing_the_second_time(world: World) -> None:
    delete_caller(world.engine, world.store, world.a, CALLER, actor="cli")
    again = delete_caller(world.engine, world.store, world.a, CALLER, actor="cli")
    assert again["calls_anonymized"] == 0 and again["recordings"] == 0
    assert again["sms_bodies_blanked"] == 0 and again["bookings_redacted"] == 0
    assert again["consent_records_kept"] == 2


def test_a_call_in_progress_keeps_its_number_until_it_ends_and_stores_nothing_more(
    world: World,
) -> None:
    CallStore(world.engine).open_call("CAlive", world.a, CALLER, "+15550100200")
    result = delete_caller(world.engine, world.store, world.a, CALLER, actor="cli")
    assert result["calls_anonymized"] == 2 and result["calls_in_progress"] == 1
    assert count(world.engine, Call, Call.call_sid == "CAlive", Call.from_number == CALLER) == 1
    # The call goes on and ends: nothing personal is kept for it, and it is anonymized.
    make_call(world.engine, world.a, "CAlive", CALLER, ["Hello.", "Text me at 4 Pine Lane."])
    [live] = call_ids(world.engine, "CAlive")
    assert count(world.engine, TranscriptSegment, TranscriptSegment.call_id == live) == 0
    assert count(world.engine, Turn, Turn.call_id == live) == 0
    assert count(world.engine, Call, Call.from_number == CALLER, Call.business_id == world.a) == 0
    with session_factory(world.engine)() as s:
        call = s.get(Call, live)
        assert call is not None and call.status == "completed" and call.duration_s is not None
    again = delete_caller(world.engine, world.store, world.a, CALLER, actor="cli")
    assert again["calls_anonymized"] == 0 and again["transcript_segments"] == 0


def test_the_deleted_marker_is_not_a_phone_number(world: World) -> None:
    with pytest.raises(ValueError):
        delete_caller(world.engine, world.store, world.a, DELETED_NUMBER, actor="cli")


# ---- the command line ---------------------------------------------------------------------


# cli.py is not wired yet: the same parser and handlers, as `voice-agent` will run them.
RUN_CLI = """
import argparse, sys
from voice_agent.cli import privacy as cli_privacy
from voice_agent.settings import Settings
parser = argparse.ArgumentParser(prog="voice-agent")
cli_privacy.add_parsers(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(cli_privacy.HANDLERS[args.command](args, Settings()))
"""


def cli_privacy(data: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(data)}
    env.pop("DATABASE_URL", None)
    env.pop("RECORDING_KEY", None)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def test_cli_export(world: World) -> None:
    out = world.data / "maria.json"
    done = cli_privacy(
        world.data, "privacy", "export", "--business", str(world.a), "--phone", CALLER,
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exported 2 calls" in done.stdout
    data = json.loads(out.read_text())
    assert [c["call_sid"] for c in data["calls"]] == ["CAcaller1", "CAcaller2"]
    assert (world.data / "maria.json.recordings" / "CAcaller1.wav").read_bytes()[:4] == b"RIFF"
    assert audit(world.engine, "export_caller")[0].actor == "cli"


def test_cli_delete_refuses_without_confirmation_or_a_terminal(world: World) -> None:
    done = cli_privacy(
        world.data, "privacy", "delete", "--business", str(world.a), "--phone", CALLER
    )
    assert done.returncode == 2
    assert "refusing" in done.stderr and "--yes" in done.stderr
    assert "transcript lines" in done.stdout and "consent records KEPT" in done.stdout
    assert count(world.engine, Call, Call.from_number == CALLER) == 3  # nothing changed
    assert audit(world.engine, "delete_caller") == []


def test_cli_delete_asks_on_a_terminal(world: World) -> None:
    for answer, code, calls_left in (("no\n", 1, 3), ("yes\n", 0, 1)):
        primary, secondary = pty.openpty()
        try:
            os.write(primary, answer.encode())
            done = cli_privacy(
                world.data, "privacy", "delete", "--business", str(world.a), "--phone", CALLER,
                stdin=secondary,
            )  # fmt: skip
        finally:
            os.close(secondary)
            os.close(primary)
        assert done.returncode == code, done.stderr
        assert "Type 'yes' to confirm" in done.stdout
        assert count(world.engine, Call, Call.from_number == CALLER) == calls_left


def test_cli_delete_with_yes(world: World) -> None:
    args = ("privacy", "delete", "--business", str(world.a), "--phone", CALLER, "--yes")
    done = cli_privacy(world.data, *args, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["transcript_segments"] == 4
    assert count(world.engine, Call, Call.from_number == DELETED_NUMBER) == 2
    again = cli_privacy(world.data, *args)
    assert again.returncode == 0 and "nothing stored" in again.stdout


def test_cli_unknown_business(world: World) -> None:
    done = cli_privacy(world.data, "privacy", "delete", "--business", "99", "--phone", CALLER)
    assert done.returncode == 1 and "no business 99" in done.stderr


def test_cli_needs_the_services_recording_key(world: World) -> None:
    (world.data / "recording.key").unlink()
    args = ("privacy", "delete", "--business", str(world.a), "--phone", CALLER, "--yes")
    done = cli_privacy(world.data, *args)
    assert done.returncode == 1 and "RECORDING_KEY" in done.stderr
    assert not (world.data / "recording.key").exists()  # no key was made up
    assert count(world.engine, Call, Call.from_number == CALLER) == 3
