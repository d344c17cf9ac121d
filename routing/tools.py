"""The receptionist's tools. The LLM policy calls them by name with JSON arguments; the
local policy calls them directly. Both get the same validation and the same records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from routing import calendar
from routing.spoken import normalize_address, parse_when
from storage.profiles import BusinessProfile, Dispatcher

Events = Callable[[str, dict[str, Any]], None]

SMS_CONSENT_WORDING = "May we text you a confirmation of this visit at this number?"


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


@dataclass
class CallFacts:
    """What this call produced, in the order of what matters most for its outcome."""

    booking: dict[str, Any] | None = None
    handoff: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    questions_answered: int = 0
    sms_consent: bool | None = None
    ended: bool = False
    notes: list[str] = field(default_factory=list)

    def outcome(self, caller_spoke: bool) -> str:
        if self.booking:
            return "booked"
        if self.handoff:
            return "handed_off"
        if self.message:
            return "message_taken"
        if self.questions_answered or caller_spoke:
            return "answered"
        return "abandoned"


class ReceptionTools:
    def __init__(
        self,
        profile: BusinessProfile,
        call_sid: str,
        caller_number: str,
        backend: ReceptionBackend,
        events: Events | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.profile, self.call_sid, self.caller_number = profile, call_sid, caller_number
        self.backend = backend
        self.events = events or (lambda _name, _data: None)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.facts = CallFacts()

    def now(self) -> datetime:
        return self._clock().astimezone(calendar.tz(self.profile))

    def resolve_time(self, when: str) -> tuple[datetime | None, str | None]:
        """ISO 8601 from a model, or the caller's own words."""
        try:
            parsed = datetime.fromisoformat(when)
            zone = calendar.tz(self.profile)
            return (
                parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)
            ), None
        except ValueError:
            pass
        spoken = parse_when(when, self.now())
        if spoken.day is None:
            return None, "I didn't catch a day and time. Which day and time would suit you?"
        at = spoken.combine(calendar.tz(self.profile))
        if at is None:  # a day without a time: the first free slot that day
            first = calendar.slots_on(
                self.profile,
                datetime.combine(spoken.day, datetime.min.time(), tzinfo=calendar.tz(self.profile)),
            )
            if not first:
                return None, f"We don't book visits on {spoken.day.strftime('%A')}s."
            at = first[0]
        return at, None

    def check_availability(self, when: str) -> dict[str, Any]:
        at, problem = self.resolve_time(when)
        if at is None:
            return {"available": False, "reason": problem, "alternatives": []}
        now = self.now()
        reason = calendar.refusal(self.profile, at, now)
        slot = calendar.slot_for(self.profile, at)
        if reason is None and slot is not None and self._free(slot):
            return {
                "available": True,
                "time": at.isoformat(),
                "spoken": calendar.speak_time(at, now),
            }
        alternatives = calendar.free_slots(self.profile, at, now, self._booked)
        return {
            "available": False,
            "reason": reason or "That time is fully booked.",
            "alternatives": [s.isoformat() for s in alternatives],
            "alternatives_spoken": [calendar.speak_time(s, now) for s in alternatives],
        }

    def book_appointment(
        self, name: str, address: str, problem: str, when: str, service: str | None = None
    ) -> dict[str, Any]:
        missing = [
            k
            for k, v in (("name", name), ("address", address), ("problem", problem), ("when", when))
            if not (v or "").strip()
        ]
        if missing:
            return {"booked": False, "reason": f"Missing: {', '.join(missing)}."}
        check = self.check_availability(when)
        if not check["available"]:
            return {"booked": False, **{k: v for k, v in check.items() if k != "available"}}
        at = datetime.fromisoformat(check["time"])
        slot = calendar.slot_for(self.profile, at)
        assert slot is not None
        chosen = self.service_for(service, problem)
        fields = {
            "scheduled_for": at,
            "duration_minutes": chosen[1],
            "service": chosen[0],
            "name": name.strip(),
            "phone": self.caller_number,
            "address": normalize_address(address),
            "problem": problem.strip(),
        }
        end = slot + timedelta(minutes=self.profile.slot_minutes)
        booking_id = self.backend.book(
            self.profile.id,
            self.call_sid,
            self.profile.visits_per_slot,
            (calendar.utc(slot), calendar.utc(end)),
            fields,
        )
        if booking_id is None:  # another call took the last place meanwhile
            return {"booked": False, **self.check_availability(when)}
        booking = {"id": booking_id, **fields, "scheduled_for": at.isoformat()}
        self.facts.booking = booking
        self.events("booking.created", {"call_sid": self.call_sid, "booking": booking})
        spoken = calendar.speak_time(at, self.now())
        return {
            "booked": True,
            "booking_id": booking_id,
            "time": at.isoformat(),
            "spoken": spoken,
            "address": fields["address"],
        }

    def record_sms_consent(self, agreed: bool) -> dict[str, Any]:
        """The caller's answer to SMS_CONSENT_WORDING, kept as proof with time and call."""
        self.backend.record_consent(
            self.profile.id, self.caller_number, agreed, SMS_CONSENT_WORDING, self.call_sid
        )
        self.facts.sms_consent = agreed
        if agreed and self.facts.booking:
            self.events(
                "booking.confirmation_requested",
                {
                    "call_sid": self.call_sid,
                    "booking": self.facts.booking,
                    "to": self.caller_number,
                },
            )
        return {"recorded": True, "sms_consent": agreed}

    def transfer_to_dispatcher(self, reason: str, summary: str) -> dict[str, Any]:
        dispatcher = self.profile.on_call
        handoff_id = self.backend.hand_off(
            self.profile.id, self.call_sid, dispatcher, reason, summary
        )
        self.facts.handoff = {
            "id": handoff_id,
            "reason": reason,
            "summary": summary,
            "dispatcher": dispatcher.name if dispatcher else None,
        }
        self.events(
            "call.handed_off",
            {
                "call_sid": self.call_sid,
                "caller": self.caller_number,
                "reason": reason,
                "summary": summary,
                "dispatcher": dispatcher.name if dispatcher else None,
                "dispatcher_phone": dispatcher.phone if dispatcher else None,
                "dispatcher_sms_opt_in": bool(dispatcher and dispatcher.sms_opt_in),
            },
        )
        return {
            "transferring": dispatcher is not None,
            "dispatcher": dispatcher.name if dispatcher else None,
        }

    def take_message(
        self,
        name: str,
        reason: str,
        callback_number: str | None = None,
        best_time: str | None = None,
        text: str | None = None,
    ) -> dict[str, Any]:
        if not (reason or "").strip():
            return {"taken": False, "reason": "Missing: reason."}
        fields = {
            "name": (name or "").strip() or None,
            "callback_number": (callback_number or "").strip() or self.caller_number,
            "reason": reason.strip(),
            "best_time": best_time,
            "text": text or reason,
        }
        message_id = self.backend.take_message(self.profile.id, self.call_sid, fields)
        self.facts.message = {"id": message_id, **fields}
        self.events("message.created", {"call_sid": self.call_sid, "message": self.facts.message})
        return {"taken": True, "message_id": message_id}

    def end_call(self) -> dict[str, Any]:
        self.facts.ended = True
        return {"ending": True}

    def service_for(self, requested: str | None, problem: str) -> tuple[str | None, int]:
        text = f"{requested or ''} {problem}".lower()
        for s in self.profile.services:
            if (requested and s.name.lower() == requested.lower()) or any(
                k in text for k in s.keywords
            ):
                return s.name, s.visit_minutes
        return requested, self.profile.slot_minutes

    def _booked(self, start: datetime, end: datetime) -> int:
        return self.backend.count_booked(self.profile.id, start, end)

    def _free(self, slot: datetime) -> bool:
        end = slot + timedelta(minutes=self.profile.slot_minutes)
        return self._booked(calendar.utc(slot), calendar.utc(end)) < self.profile.visits_per_slot
