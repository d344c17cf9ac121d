"""Bookings, messages, handoffs and consent made during calls (the receptionist's backend)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.consent import ConsentStore
from storage.db import session_factory
from storage.fields import caller_id, clip
from storage.models import Booking, Call, Handoff, Message
from storage.profiles import Dispatcher


def _now() -> datetime:
    return datetime.now(UTC)


_NUMBERS = {"phone", "callback_number"}


def add_message(
    s: Session, business_id: int, call_id: int | None, fields: dict[str, Any], once: bool = False
) -> int:
    """A message row; `once`: unless this call already has the same one (a write that was
    taken for lost, and stored from the journal too)."""
    fitted = _fit(Message, fields)
    if once and call_id is not None:
        same = s.scalar(
            select(Message.id).where(
                Message.call_id == call_id,
                Message.reason == fitted.get("reason"),
                Message.text == fitted.get("text"),
            )
        )
        if same is not None:
            return same
    message = Message(business_id=business_id, call_id=call_id, created_at=_now(), **fitted)
    s.add(message)
    s.flush()
    return message.id


def _fit(model: type, fields: dict[str, Any]) -> dict[str, Any]:
    """What the dialogue heard, made to fit its columns (storage.fields): numbers through
    caller_id, other short text clipped to the column's length."""
    table = model.__table__  # type: ignore[attr-defined]
    fitted = dict(fields)
    for key, value in fields.items():
        if not isinstance(value, str) or key not in table.c:
            continue
        if key in _NUMBERS:
            fitted[key] = caller_id(value)
        elif (limit := getattr(table.c[key].type, "length", None)) is not None:
            fitted[key] = clip(value, limit)
    return fitted


class ReceptionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._consent = ConsentStore(engine)

    def _call_id(self, s, call_sid: str) -> int | None:  # type: ignore[no-untyped-def]
        return s.scalar(select(Call.id).where(Call.call_sid == call_sid))

    def count_booked(self, business_id: int, start: datetime, end: datetime) -> int:
        with self._sessions() as s:
            return self._count(s, business_id, start, end)

    @staticmethod
    def _count(s, business_id: int, start: datetime, end: datetime) -> int:  # type: ignore[no-untyped-def]
        return s.scalar(
            select(func.count(Booking.id)).where(
                Booking.business_id == business_id,
                Booking.status == "confirmed",
                Booking.scheduled_for >= start,
                Booking.scheduled_for < end,
            )
        )

    def book(
        self,
        business_id: int,
        call_sid: str,
        capacity: int,
        slot: tuple[datetime, datetime],
        fields: dict[str, Any],
    ) -> int | None:
        with self._sessions.begin() as s:
            if self._engine.dialect.name == "postgresql":
                # Serialize bookings per business so two calls cannot both take the last place.
                s.execute(select(func.pg_advisory_xact_lock(business_id)))
            if self._count(s, business_id, *slot) >= capacity:
                return None
            booking = Booking(
                business_id=business_id,
                call_id=self._call_id(s, call_sid),
                created_at=_now(),
                status="confirmed",
                **{
                    **_fit(Booking, fields),
                    "scheduled_for": fields["scheduled_for"].astimezone(UTC),
                },
            )
            s.add(booking)
            s.flush()
            return booking.id

    def take_message(self, business_id: int, call_sid: str, fields: dict[str, Any]) -> int:
        with self._sessions.begin() as s:
            return add_message(s, business_id, self._call_id(s, call_sid), fields)

    def hand_off(
        self,
        business_id: int,
        call_sid: str,
        dispatcher: Dispatcher | None,
        reason: str,
        summary: str,
    ) -> int:
        with self._sessions.begin() as s:
            handoff = Handoff(
                business_id=business_id,
                call_id=self._call_id(s, call_sid),
                dispatcher_id=dispatcher.id if dispatcher else None,
                dispatcher_name=dispatcher.name if dispatcher else None,
                dispatcher_phone=dispatcher.phone if dispatcher else None,
                requested_at=_now(),
                **_fit(Handoff, {"reason": reason, "summary": summary}),
            )
            s.add(handoff)
            s.flush()
            return handoff.id

    def record_consent(
        self, business_id: int, phone: str, opt_in: bool, wording: str, call_sid: str
    ) -> None:
        self._consent.record(business_id, phone, opt_in, "call", wording, call_sid)

    def handoff_for_call(self, call_sid: str) -> Handoff | None:
        """The pending handoff that /twilio/stream-ended turns into <Dial>."""
        with self._sessions() as s:
            return s.scalar(
                select(Handoff)
                .join(Call, Handoff.call_id == Call.id)
                .where(Call.call_sid == call_sid)
                .order_by(Handoff.id.desc())
                .limit(1)
            )

    def update_handoff(self, handoff_id: int, **changes: Any) -> None:
        with self._sessions.begin() as s:
            handoff = s.get(Handoff, handoff_id)
            if handoff is not None:
                for key, value in changes.items():
                    setattr(handoff, key, value)
