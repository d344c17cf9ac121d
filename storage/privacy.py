"""A caller's data on request: everything one business stores about one phone number, as one
JSON document (plus the decrypted recordings), or deleted.

Scope is always one business and one number: another business's data for the same number
is never read or touched. Deleting keeps the calls as anonymous statistics (duration,
outcome) and keeps consent and opt-out records, which prove what the person agreed to."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session

from storage.audit import write_audit
from storage.calls import (
    LIVE_STATUSES,
    call_summary,
    is_stale,
    segment_json,
    turn_json,
)
from storage.db import iso as _iso
from storage.db import session_factory
from storage.erasure import DELETED_NUMBER
from storage.fields import caller_id
from storage.models import (
    Booking,
    Business,
    Call,
    ConsentRecord,
    Handoff,
    Message,
    Recording,
    SmsMessage,
    TranscriptSegment,
    Turn,
)
from storage.outcomes import booking_json, message_json
from storage.phone_refs import phone_ref
from storage.recordings import RecordingError, RecordingInfo, RecordingStore

# Deletion is never put off by a call that has not ended:
# - a live call (ringing or in progress, with a sign of life within STALE_AFTER) loses what
#   it stored so far (lines, files, messages) and is marked `erased`: it keeps its number
#   until it ends (the session still needs it), then CallStore.finalize stores no personal
#   data for it and anonymizes it; RecordingStore.keep drops its file;
# - a call left live by a dead process (no sign of life for STALE_AFTER) is anonymized at
#   once, its unregistered recording files removed (storage.recovery closes it later).


def _phone(phone: str) -> str:
    """As stored (storage.fields.caller_id), so a long SIP id finds its calls."""
    phone = phone.strip()
    if not phone or phone == DELETED_NUMBER:
        raise ValueError(f"not a phone number: {phone!r}")
    return caller_id(phone)


def _business(s: Session, business_id: int) -> Business:
    business = s.get(Business, business_id)
    if business is None:
        raise LookupError(f"no business {business_id}")
    return business


@dataclass
class _Scope:
    """The rows that are about one caller at one business."""

    business_id: int
    phone: str
    calls: list[Call]

    @property
    def call_ids(self) -> list[int]:
        return [c.id for c in self.calls]

    @property
    def call_sids(self) -> list[str]:
        return [c.call_sid for c in self.calls]

    def bookings(self) -> Any:
        return (Booking.business_id == self.business_id) & or_(
            Booking.call_id.in_(self.call_ids), Booking.phone == self.phone
        )

    def messages(self) -> Any:
        return (Message.business_id == self.business_id) & or_(
            Message.call_id.in_(self.call_ids), Message.callback_number == self.phone
        )

    def handoffs(self) -> Any:
        return (Handoff.business_id == self.business_id) & Handoff.call_id.in_(self.call_ids)

    def consent(self) -> Any:
        return (ConsentRecord.business_id == self.business_id) & (ConsentRecord.phone == self.phone)

    def sms_to_caller(self) -> Any:
        return (SmsMessage.business_id == self.business_id) & (SmsMessage.to_number == self.phone)

    def sms_about_calls(self) -> Any:
        """To the caller, or about their calls (a dispatcher alert names the caller)."""
        return (SmsMessage.business_id == self.business_id) & or_(
            SmsMessage.to_number == self.phone, SmsMessage.call_sid.in_(self.call_sids)
        )

    def recordings(self) -> Any:
        return Recording.call_id.in_(self.call_ids)


def _scope(s: Session, business_id: int, phone: str) -> _Scope:
    calls = s.scalars(
        select(Call)
        .where(Call.business_id == business_id, Call.from_number == phone)
        .order_by(Call.started_at, Call.id)
    ).all()
    return _Scope(business_id, phone, list(calls))


def recording_rows(
    s: Session, store: RecordingStore, where: Any, business_id: int
) -> list[tuple[RecordingInfo, datetime]]:
    rows = s.execute(
        select(Recording, Call.call_sid)
        .join(Call, Recording.call_id == Call.id)
        .where(where)
        .order_by(Recording.id)
    ).all()
    return [
        (
            RecordingInfo(
                rec.id, sid, business_id, store.directory / rec.path, rec.bytes, rec.duration_s
            ),
            rec.created_at,
        )
        for rec, sid in rows
    ]


def recording_infos(
    s: Session, store: RecordingStore, where: Any, business_id: int
) -> list[RecordingInfo]:
    return [info for info, _ in recording_rows(s, store, where, business_id)]


def _recording_files(infos: list[RecordingInfo]) -> list[str]:
    """Export file names: <call_sid>.wav, then <call_sid>-2.wav for a call's second one."""
    names, seen = [], {}
    for info in infos:
        seen[info.call_sid] = seen.get(info.call_sid, 0) + 1
        n = seen[info.call_sid]
        names.append(f"{info.call_sid}.wav" if n == 1 else f"{info.call_sid}-{n}.wav")
    return names


# ---- export -------------------------------------------------------------------------------


def export_caller(
    engine: Engine,
    recordings: RecordingStore,
    business_id: int,
    phone: str,
    actor: str = "system",
) -> dict[str, Any]:
    """Everything stored about `phone` at `business_id`, JSON-able. Reading transcripts is
    audited (action `export_caller`)."""
    return _export(engine, recordings, business_id, phone, actor)[0]


def _export(
    engine: Engine, recordings: RecordingStore, business_id: int, phone: str, actor: str
) -> tuple[dict[str, Any], list[RecordingInfo]]:
    phone = _phone(phone)
    with session_factory(engine).begin() as s:
        business = _business(s, business_id)
        scope = _scope(s, business_id, phone)
        ids = scope.call_ids
        segments = s.scalars(
            select(TranscriptSegment)
            .where(TranscriptSegment.call_id.in_(ids))
            .order_by(TranscriptSegment.call_id, TranscriptSegment.seq)
        ).all()
        turns = s.scalars(
            select(Turn).where(Turn.call_id.in_(ids)).order_by(Turn.call_id, Turn.index)
        ).all()
        sid_of = {c.id: c.call_sid for c in scope.calls}
        bookings = s.scalars(select(Booking).where(scope.bookings()).order_by(Booking.id)).all()
        messages = s.scalars(select(Message).where(scope.messages()).order_by(Message.id)).all()
        handoffs = s.scalars(select(Handoff).where(scope.handoffs()).order_by(Handoff.id)).all()
        consent = s.scalars(
            select(ConsentRecord)
            .where(scope.consent())
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        ).all()
        sms = s.scalars(
            select(SmsMessage).where(scope.sms_to_caller()).order_by(SmsMessage.id)
        ).all()
        recs = recording_rows(s, recordings, scope.recordings(), business_id)
        infos = [info for info, _ in recs]

        data: dict[str, Any] = {
            "business": {"id": business.id, "name": business.name, "line": business.line},
            "phone": phone,
            "exported_at": datetime.now(UTC).isoformat(),
            "calls": [
                {
                    **call_summary(c),
                    "transcript": [segment_json(seg) for seg in segments if seg.call_id == c.id],
                    "turns": [turn_json(t) for t in turns if t.call_id == c.id],
                }
                for c in scope.calls
            ],
            "bookings": [
                {
                    "call_sid": sid_of.get(b.call_id) if b.call_id else None,
                    **booking_json(b),
                    "created_at": _iso(b.created_at),
                }
                for b in bookings
            ],
            "messages": [
                {
                    "call_sid": sid_of.get(m.call_id) if m.call_id else None,
                    **message_json(m),
                    "handled_at": _iso(m.handled_at),
                }
                for m in messages
            ],
            "handoffs": [  # the dispatcher's own number is theirs, not the caller's
                {
                    "call_sid": sid_of.get(h.call_id) if h.call_id else None,
                    "reason": h.reason,
                    "summary": h.summary,
                    "dispatcher": h.dispatcher_name,
                    "requested_at": _iso(h.requested_at),
                    "dialed_at": _iso(h.dialed_at),
                    "dial_status": h.dial_status,
                    "ended_at": _iso(h.ended_at),
                }
                for h in handoffs
            ],
            "consent_records": [
                {
                    "channel": r.channel,
                    "opt_in": r.opt_in,
                    "source": r.source,
                    "wording": r.wording,
                    "call_sid": r.call_sid,
                    "recorded_at": _iso(r.recorded_at),
                }
                for r in consent
            ],
            "sms_messages": [
                {
                    "call_sid": m.call_sid,
                    "to": m.to_number,
                    "purpose": m.purpose,
                    "body": m.body,
                    "status": m.status,
                    "twilio_sid": m.twilio_sid,
                    "error": m.error,
                    "created_at": _iso(m.created_at),
                }
                for m in sms
            ],
            "recordings": [
                {
                    "call_sid": info.call_sid,
                    "file": name,
                    "bytes": info.bytes,
                    "duration_s": info.duration_s,
                    "created_at": _iso(created_at),
                }
                for (info, created_at), name in zip(recs, _recording_files(infos), strict=True)
            ],
        }
        write_audit(
            s,
            business_id,
            actor,
            "export_caller",
            phone_ref(recordings.key, business_id, phone),
            {"calls": len(scope.calls), "recordings": len(infos)},
        )
    return data, infos


def write_export(
    engine: Engine,
    recordings: RecordingStore,
    business_id: int,
    phone: str,
    out: Path,
    actor: str = "system",
) -> dict[str, Any]:
    """The export as `out` (JSON) and the decrypted recordings as `<out>.recordings/*.wav`,
    all readable by the owner only. A recording that cannot be read is listed with its
    error instead of failing the whole export."""
    data, infos = _export(engine, recordings, business_id, phone, actor)
    wav_dir = out.with_name(out.name + ".recordings")
    if infos:
        wav_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry, info in zip(data["recordings"], infos, strict=True):
        target = wav_dir / entry["file"]
        try:
            _write_private(target, recordings.wav(info))
        except (RecordingError, OSError) as exc:
            target.unlink(missing_ok=True)
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["file"] = None
    _write_private(out, [json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n"])
    return data


def _write_private(path: Path, chunks: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---- deletion -----------------------------------------------------------------------------


# An SMS whose text (or Twilio's error, which can quote it) has not been erased yet.
_SMS_WITH_TEXT = (SmsMessage.body != "") | SmsMessage.error.is_not(None)


def _count(s: Session, model: Any, where: Any) -> int:
    return s.scalar(select(func.count()).select_from(model).where(where)) or 0


def _live(call: Call, now: datetime) -> bool:
    """Ringing or in progress, and not left so by a dead process."""
    return call.status in LIVE_STATUSES and not is_stale(call, now)


def caller_summary(engine: Engine, business_id: int, phone: str) -> dict[str, int]:
    """What delete_caller would remove (counts only; nothing is read aloud or changed)."""
    phone = _phone(phone)
    now = datetime.now(UTC)
    with session_factory(engine)() as s:
        _business(s, business_id)
        scope = _scope(s, business_id, phone)
        ids = scope.call_ids
        return {
            "calls": len(ids),
            "calls_in_progress": sum(_live(c, now) for c in scope.calls),
            "transcript_segments": _count(s, TranscriptSegment, TranscriptSegment.call_id.in_(ids)),
            "turns": _count(s, Turn, Turn.call_id.in_(ids)),
            "recordings": _count(s, Recording, scope.recordings()),
            "messages": _count(s, Message, scope.messages()),
            "bookings": _count(s, Booking, scope.bookings()),
            "handoffs": _count(s, Handoff, scope.handoffs()),
            "sms_messages": _count(s, SmsMessage, scope.sms_about_calls() & _SMS_WITH_TEXT),
            "consent_records_kept": _count(s, ConsentRecord, scope.consent()),
        }


def delete_caller(
    engine: Engine,
    recordings: RecordingStore,
    business_id: int,
    phone: str,
    actor: str,
) -> dict[str, Any]:
    """Delete what `business_id` keeps about `phone`; returns what was done (counts).

    Gone: transcripts, turns, recordings (files, then rows; also files a crash left with no
    row), messages; bookings keep their slot, service and status but lose name, phone,
    address and problem; handoffs lose their summary; SMS to the number (or about its
    calls) lose body and error. Calls stay, with `from_number` = "deleted", as anonymous
    statistics. Consent records are kept. Idempotent. Never put off by a call that has not
    ended (see the rules at the top): `calls_in_progress` counts live calls whose number is
    kept until they end, with nothing personal stored for them after this."""
    phone = _phone(phone)
    now = datetime.now(UTC)
    sessions = session_factory(engine)
    with sessions() as s:
        _business(s, business_id)
        scope = _scope(s, business_id, phone)
        infos = recording_infos(s, recordings, scope.recordings(), business_id)
        sids = scope.call_sids

    # Files first: a row left behind by a crash is an honest record, a file would not be.
    files = 0
    for info in infos:
        files += info.path.exists()
        recordings.delete(info)
    # Files with no row: a process that died mid-call, or a call still being recorded (its
    # writer goes on into the unlinked file, which RecordingStore.keep then drops).
    for sid in sids:
        for path in recordings.files_of(sid):
            path.unlink(missing_ok=True)
            files += 1

    with sessions.begin() as s:
        scope = _scope(s, business_id, phone)  # again, inside the transaction that changes it
        ids = scope.call_ids
        live = [c.id for c in scope.calls if _live(c, now)]
        summary: dict[str, Any] = {
            "business_id": business_id,
            "calls_anonymized": len(ids) - len(live),
            "calls_in_progress": len(live),
            "recordings": len(infos),
            "recording_files": files,
        }
        # A recording registered since the files were removed: its file goes with the row.
        for info in recording_infos(s, recordings, scope.recordings(), business_id):
            info.path.unlink(missing_ok=True)
            summary["recordings"] += 1
        s.execute(delete(Recording).where(scope.recordings()))
        summary["transcript_segments"] = s.execute(
            delete(TranscriptSegment).where(TranscriptSegment.call_id.in_(ids))
        ).rowcount
        summary["turns"] = s.execute(delete(Turn).where(Turn.call_id.in_(ids))).rowcount
        summary["messages"] = s.execute(delete(Message).where(scope.messages())).rowcount
        summary["bookings_redacted"] = s.execute(
            update(Booking)
            .where(scope.bookings())
            .values(name=None, phone=None, address=None, problem=None)
        ).rowcount
        summary["handoffs_redacted"] = s.execute(
            update(Handoff).where(scope.handoffs()).values(summary=None)
        ).rowcount
        summary["sms_bodies_blanked"] = s.execute(
            update(SmsMessage)
            .where(scope.sms_about_calls() & _SMS_WITH_TEXT)
            .values(body="", error=None)
        ).rowcount
        s.execute(
            update(Call)
            .where(Call.id.in_([i for i in ids if i not in live]))
            .values(from_number=DELETED_NUMBER)
        )
        # Not ended yet (live or crashed): whatever they still produce is not kept.
        s.execute(
            update(Call).where(Call.id.in_(ids), Call.status.in_(LIVE_STATUSES)).values(erased=True)
        )
        summary["consent_records_kept"] = _count(s, ConsentRecord, scope.consent())
        write_audit(
            s,
            business_id,
            actor,
            "delete_caller",
            phone_ref(recordings.key, business_id, phone),
            {k: v for k, v in summary.items() if k != "business_id"},
        )
    return summary
