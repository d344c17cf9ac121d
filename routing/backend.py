"""Where the receptionist's records go, and what a tool answers when they can't go there."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from storage.profiles import Dispatcher

UNAVAILABLE = "Our booking system can't be reached right now."


class StorageDown(Exception):
    """The backend refused a write or a read: the call goes on without it."""


class ReceptionBackend(Protocol):
    """Where bookings, messages, handoffs and consent are kept (storage implements it)."""

    def count_booked(self, business_id: int, start: datetime, end: datetime) -> int: ...

    def book(
        self,
        business_id: int,
        call_sid: str,
        capacity: int,
        slot: tuple[datetime, datetime],
        fields: dict[str, Any],
    ) -> int | None:
        """Insert unless the slot is full (checked in the same transaction); None if full."""
        ...

    def take_message(self, business_id: int, call_sid: str, fields: dict[str, Any]) -> int: ...

    def hand_off(
        self,
        business_id: int,
        call_sid: str,
        dispatcher: Dispatcher | None,
        reason: str,
        summary: str,
    ) -> int: ...

    def record_consent(
        self, business_id: int, phone: str, opt_in: bool, wording: str, call_sid: str
    ) -> None: ...


_NEXT_STEPS = {
    "take_message": "Tell the caller, then take a message with take_message so someone calls back.",
    "no_text": "Tell the caller we won't text them for now.",
    "message_noted": "The message is noted with this call and will be passed on.",
}


def unavailable(next_step: str) -> dict[str, Any]:
    """A tool result for a backend that is down, with what the model should do next (one of
    "take_message", "no_text", "message_noted")."""
    return {
        "unavailable": True,
        "reason": UNAVAILABLE,
        "next_step": next_step,
        "instructions": _NEXT_STEPS[next_step],
    }
