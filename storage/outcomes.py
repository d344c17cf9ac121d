"""What came of a call (booking, message, handoff) as `calls show --json` prints it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Booking, Business, Handoff, Message


def _iso(dt: datetime | None, tz: str = "UTC") -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite drops the offset; everything is stored in UTC
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(ZoneInfo(tz)).isoformat()


def outcome_details(s: Session, call_id: int) -> dict[str, Any]:
    booking = s.scalar(select(Booking).where(Booking.call_id == call_id).order_by(Booking.id))
    message = s.scalar(select(Message).where(Message.call_id == call_id).order_by(Message.id))
    handoff = s.scalar(select(Handoff).where(Handoff.call_id == call_id).order_by(Handoff.id))
    tz = "UTC"
    if booking is not None:
        tz = s.scalar(select(Business.timezone).where(Business.id == booking.business_id))
    return {
        "booking": booking and {
            # In the business's own time zone, with its offset: what the caller agreed to.
            "scheduled_for": _iso(booking.scheduled_for, tz),
            "duration_minutes": booking.duration_minutes, "service": booking.service,
            "name": booking.name, "phone": booking.phone, "address": booking.address,
            "problem": booking.problem, "status": booking.status,
        },
        "message": message and {
            "name": message.name, "callback_number": message.callback_number,
            "reason": message.reason, "best_time": message.best_time, "text": message.text,
            "created_at": _iso(message.created_at),
        },
        "handoff": handoff and {
            "reason": handoff.reason, "summary": handoff.summary,
            "dispatcher": handoff.dispatcher_name, "dispatcher_phone": handoff.dispatcher_phone,
            "requested_at": _iso(handoff.requested_at), "dialed_at": _iso(handoff.dialed_at),
            "dial_status": handoff.dial_status, "ended_at": _iso(handoff.ended_at),
        },
    }  # fmt: skip
