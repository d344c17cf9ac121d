"""What came of a call (booking, message, handoff) as `calls show --json` prints it."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import iso
from storage.models import Booking, Business, Handoff, Message


def booking_json(booking: Booking, tz: tzinfo | str | None = None) -> dict[str, Any]:
    """A booking as the CLI, the API and a privacy export show it; `scheduled_for` in the
    business's own time zone when given, with its offset: what the caller agreed to."""
    return {
        "scheduled_for": iso(booking.scheduled_for, tz),
        "duration_minutes": booking.duration_minutes, "service": booking.service,
        "name": booking.name, "phone": booking.phone, "address": booking.address,
        "problem": booking.problem, "status": booking.status,
    }  # fmt: skip


def message_json(message: Message) -> dict[str, Any]:
    """A taken message as `calls show`, the API and a privacy export show it."""
    return {
        "name": message.name, "callback_number": message.callback_number,
        "reason": message.reason, "best_time": message.best_time, "text": message.text,
        "created_at": iso(message.created_at, "UTC"),
    }  # fmt: skip


def outcome_details(s: Session, call_id: int) -> dict[str, Any]:
    booking = s.scalar(select(Booking).where(Booking.call_id == call_id).order_by(Booking.id))
    message = s.scalar(select(Message).where(Message.call_id == call_id).order_by(Message.id))
    handoff = s.scalar(select(Handoff).where(Handoff.call_id == call_id).order_by(Handoff.id))
    tz = "UTC"
    if booking is not None:
        tz = s.scalar(select(Business.timezone).where(Business.id == booking.business_id))
    return {
        "booking": booking and booking_json(booking, tz),
        "message": message and message_json(message),
        "handoff": handoff and {
            "reason": handoff.reason, "summary": handoff.summary,
            "dispatcher": handoff.dispatcher_name, "dispatcher_phone": handoff.dispatcher_phone,
            "requested_at": iso(handoff.requested_at, "UTC"),
            "dialed_at": iso(handoff.dialed_at, "UTC"),
            "dial_status": handoff.dial_status, "ended_at": iso(handoff.ended_at, "UTC"),
        },
    }  # fmt: skip
