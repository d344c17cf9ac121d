"""A caller's data on request: everything one business stores about one phone number,
exported as one JSON document with the decrypted recordings (storage.privacy_export) or
deleted (storage.privacy_deletion). This module is what both work on: the rows that are
about one caller at one business.

Scope is always one business and one number: another business's data for the same number
is never read or touched. Deleting keeps the calls as anonymous statistics (duration,
outcome) and keeps consent and opt-out records, which prove what the person agreed to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

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
)
from storage.recordings import RecordingInfo, RecordingStore


def caller_phone(phone: str) -> str:
    """As stored (storage.fields.caller_id), so a long SIP id finds its calls."""
    phone = phone.strip()
    if not phone or phone == DELETED_NUMBER:
        raise ValueError(f"not a phone number: {phone!r}")
    return caller_id(phone)


def existing_business(s: Session, business_id: int) -> Business:
    business = s.get(Business, business_id)
    if business is None:
        raise LookupError(f"no business {business_id}")
    return business


@dataclass
class CallerScope:
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


def caller_scope(s: Session, business_id: int, phone: str) -> CallerScope:
    calls = s.scalars(
        select(Call)
        .where(Call.business_id == business_id, Call.from_number == phone)
        .order_by(Call.started_at, Call.id)
    ).all()
    return CallerScope(business_id, phone, list(calls))


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
