"""What is personal about one call, removed inside the caller's transaction.

Used where a call's data must go after `privacy delete` could not finish the job: the call
was live then (CallStore.finalize), or its process died (storage.recovery). Recording files
are removed by whoever holds the recordings directory (RecordingStore.keep, recovery)."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from storage.models import (
    Booking,
    Call,
    Handoff,
    Message,
    Recording,
    SmsMessage,
    TranscriptSegment,
    Turn,
)

DELETED_NUMBER = "deleted"  # what a deleted caller's calls keep as from_number


def erase_call(s: Session, call: Call) -> None:
    """Transcript lines, turns, messages and recording rows go; the call's booking loses its
    personal fields, its handoff the summary, SMS about it their text; the call keeps its
    statistics with `from_number` = "deleted". Consent records are kept."""

    s.execute(delete(TranscriptSegment).where(TranscriptSegment.call_id == call.id))
    s.execute(delete(Turn).where(Turn.call_id == call.id))
    s.execute(delete(Recording).where(Recording.call_id == call.id))
    s.execute(delete(Message).where(Message.call_id == call.id))
    s.execute(
        update(Booking)
        .where(Booking.call_id == call.id)
        .values(name=None, phone=None, address=None, problem=None)
    )
    s.execute(update(Handoff).where(Handoff.call_id == call.id).values(summary=None))
    s.execute(
        update(SmsMessage).where(SmsMessage.call_sid == call.call_sid).values(body="", error=None)
    )
    call.from_number = DELETED_NUMBER
    call.erased = True
