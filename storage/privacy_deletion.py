"""A caller's data, deleted: what one business keeps about one number goes, except the
calls as anonymous statistics and the consent records (see storage.privacy for the scope)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from storage.audit import write_audit
from storage.calls import LIVE_STATUSES, is_stale
from storage.db import session_factory
from storage.erasure import DELETED_NUMBER
from storage.models import (
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
from storage.privacy import caller_phone, caller_scope, existing_business, recording_infos
from storage.recordings import RecordingStore

# Deletion is never put off by a call that has not ended:
# - a live call (ringing or in progress, with a sign of life within STALE_AFTER) loses what
#   it stored so far (lines, files, messages) and is marked `erased`: it keeps its number
#   until it ends (the session still needs it), then CallStore.finalize stores no personal
#   data for it and anonymizes it; RecordingStore.keep drops its file;
# - a call left live by a dead process (no sign of life for STALE_AFTER) is anonymized at
#   once, its unregistered recording files removed (storage.recovery closes it later).

# An SMS whose text (or Twilio's error, which can quote it) has not been erased yet.
_SMS_WITH_TEXT = (SmsMessage.body != "") | SmsMessage.error.is_not(None)


def _count(s: Session, model: Any, where: Any) -> int:
    return s.scalar(select(func.count()).select_from(model).where(where)) or 0


def _live(call: Call, now: datetime) -> bool:
    """Ringing or in progress, and not left so by a dead process."""
    return call.status in LIVE_STATUSES and not is_stale(call, now)


def caller_summary(engine: Engine, business_id: int, phone: str) -> dict[str, int]:
    """What delete_caller would remove (counts only; nothing is read aloud or changed)."""
    phone = caller_phone(phone)
    now = datetime.now(UTC)
    with session_factory(engine)() as s:
        existing_business(s, business_id)
        scope = caller_scope(s, business_id, phone)
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
    phone = caller_phone(phone)
    now = datetime.now(UTC)
    sessions = session_factory(engine)
    with sessions() as s:
        existing_business(s, business_id)
        scope = caller_scope(s, business_id, phone)
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
        scope = caller_scope(s, business_id, phone)  # again, inside the transaction that changes it
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
