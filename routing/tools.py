"""The receptionist's tools. The LLM policy calls them by name with JSON arguments; the
local policy calls them directly. Both get the same validation and the same records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from routing import calendar
from routing.backend import ReceptionBackend, StorageDown, unavailable
from routing.call_facts import CallFacts, left_message, substantive
from routing.capabilities import can_book, can_transfer
from routing.spoken import normalize_address, parse_when
from storage.profiles import BusinessProfile

log = logging.getLogger(__name__)

SETTLE_S = 10.0  # the end of a call waits this long for its last writes, then moves on
T = TypeVar("T")

Events = Callable[[str, dict[str, Any]], None]

SMS_CONSENT_WORDING = "May we text you a confirmation of this visit at this number?"


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

    # -- what the profile allows --------------------------------------------------------

    @property
    def can_book(self) -> bool:
        return can_book(self.profile)

    @property
    def can_transfer(self) -> bool:
        return can_transfer(self.profile)

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

    # -- the tools ----------------------------------------------------------------------

    def check_availability(self, when: str) -> dict[str, Any]:
        if not self.can_book:
            return self._no_booking()
        at, problem = self.resolve_time(when)
        if at is None:
            return {"available": False, "reason": problem, "alternatives": []}
        now = self.now()
        reason = calendar.refusal(self.profile, at, now)
        slot = calendar.slot_for(self.profile, at)
        try:
            if reason is None and slot is not None and self._free(slot):
                return {
                    "available": True,
                    "time": at.isoformat(),
                    "spoken": calendar.speak_time(at, now),
                }
            alternatives = calendar.free_slots(self.profile, at, now, self._booked)
        except StorageDown:
            return {"available": False, **unavailable("take_message"), "alternatives": []}
        return {
            "available": False,
            "reason": reason or "That time is fully booked.",
            "alternatives": [s.isoformat() for s in alternatives],
            "alternatives_spoken": [calendar.speak_time(s, now) for s in alternatives],
        }

    def book_appointment(
        self, name: str, address: str, problem: str, when: str, service: str | None = None
    ) -> dict[str, Any]:
        self.hear(name=name, address=address, problem=problem)
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
        try:
            booking_id = self._write(
                "book",
                self.backend.book,
                self.profile.id,
                self.call_sid,
                self.profile.visits_per_slot,
                (calendar.utc(slot), calendar.utc(end)),
                fields,
            )
        except StorageDown:  # a visit nobody can see is no visit: the caller gets a message
            return {"booked": False, **unavailable("take_message")}
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
        recorded, _ = self._keep("consent", {"opt_in": agreed})
        self.facts.sms_consent = agreed
        if not recorded:  # no proof of consent, no text (retried when the call ends)
            return {"recorded": False, "sms_consent": agreed, **unavailable("no_text")}
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
        """Hand the call to the on-call dispatcher. With nobody on call there is no handoff:
        the caller gets an urgent message instead. The transfer does not wait on the
        database: a refused write is retried when the call ends (the stream-ended webhook
        can dial from memory)."""
        dispatcher = self.profile.on_call
        self.hear(problem=reason)
        if dispatcher is None or not self.can_transfer:
            return {
                "transferring": False,
                "dispatcher": None,
                "reason": "Nobody is on call. Take an urgent message with take_message.",
            }
        _, handoff_id = self._keep("handoff", {"reason": reason, "summary": summary})
        self.facts.handoff = {
            "id": handoff_id,
            "reason": reason,
            "summary": summary,
            "dispatcher": dispatcher.name,
        }
        self.events(
            "call.handed_off",
            {
                "call_sid": self.call_sid,
                "caller": self.caller_number,
                "reason": reason,
                "summary": summary,
                "dispatcher": dispatcher.name,
                "dispatcher_phone": dispatcher.phone,
                "dispatcher_sms_opt_in": bool(dispatcher.sms_opt_in),
            },
        )
        return {"transferring": True, "dispatcher": dispatcher.name}

    def take_message(
        self,
        name: str,
        reason: str,
        callback_number: str | None = None,
        best_time: str | None = None,
        text: str | None = None,
    ) -> dict[str, Any]:
        self.hear(name=name, problem=reason, callback=callback_number, best_time=best_time)
        if not (reason or "").strip():
            return {"taken": False, "reason": "Missing: reason."}
        fields = {
            "name": (name or "").strip() or None,
            "callback_number": (callback_number or "").strip() or self.caller_number,
            "reason": reason.strip(),
            "best_time": best_time,
            "text": text or reason,
        }
        # A refused write is kept with the call and retried at its end; the team still gets
        # the event.
        self.facts.message = {"id": None, **fields}
        _, message_id = self._keep("message", fields)
        self.facts.message["id"] = message_id
        self.events("message.created", {"call_sid": self.call_sid, "message": self.facts.message})
        if message_id is None:
            return {"taken": True, "saved": False, **unavailable("message_noted")}
        return {"taken": True, "message_id": message_id}

    def end_call(self) -> dict[str, Any]:
        self.facts.ended = True
        return {"ending": True}

    # -- the end of the call --------------------------------------------------------------

    def hear(self, **said: str | None) -> None:
        """Keep what the caller told us (the first value of each kind wins), so the end
        of the call can still turn it into a message."""
        for key, value in said.items():
            value = (value or "").strip()
            if value and not self.facts.heard.get(key):
                self.facts.heard[key] = value

    def save_unsaved(self) -> bool:
        """Retry the writes the backend refused during the call; True once none is left."""
        pending, self.facts.unsaved = self.facts.unsaved, []
        for kind, args in pending:  # a write refused again goes back on the list
            stored, record_id = self._keep(kind, args)
            record = {"message": self.facts.message, "handoff": self.facts.handoff}.get(kind)
            if stored and record is not None and record.get("id") is None:
                record["id"] = record_id
        return not self.facts.unsaved

    async def settle(self, caller_lines: list[str]) -> str:
        """finish_call off the event loop, for a policy's end of call. It never fails: if
        settling does, the outcome is what the call's facts already show."""
        try:
            # Bounded: a database that stopped answering must not hold the call's record.
            return await asyncio.wait_for(
                asyncio.to_thread(self.finish_call, caller_lines), SETTLE_S
            )
        except Exception:
            log.exception("call %s: could not settle the outcome", self.call_sid)
            return self.facts.outcome(caller_spoke=bool(caller_lines))

    def unsaved_messages(self) -> list[dict[str, Any]]:
        """Messages not (known to be) stored: they go with the call's record."""
        return [dict(args) for kind, args in list(self.facts.unsaved) if kind == "message"]

    def finish_call(self, caller_lines: list[str]) -> str:
        """The call is over: its outcome. Blocking (database): run it off the event loop.

        A caller who said something worth a call back (a problem, a name, a question we
        could not settle) and got neither a booking, a handoff nor a message gets a message
        now, from what the dialogue gathered and the caller's own words, so someone calls
        back. Writes refused during the call are retried. If the database is still down the
        outcome is returned all the same and `facts.unsaved` holds what could not be stored
        (each as `(kind, fields)`)."""
        facts = self.facts
        lines = [line.strip() for line in caller_lines if line and line.strip()]
        said = [line for line in lines if substantive(line)]
        gathered = facts.heard.get("problem")
        needs_call_back = bool(gathered) or (bool(said) and not facts.questions_answered)
        if not (facts.booking or facts.handoff or facts.message) and needs_call_back:
            self.take_message(
                name=facts.heard.get("name", ""),
                reason=gathered or said[0],
                callback_number=facts.heard.get("callback"),
                best_time=facts.heard.get("best_time"),
                text=left_message(facts.heard, said),
            )
        if facts.unsaved and not self.save_unsaved():
            log.error(
                "call %s: %d record(s) could not be stored: %s",
                self.call_sid,
                len(facts.unsaved),
                ", ".join(kind for kind, _ in facts.unsaved),
            )
        return facts.outcome(caller_spoke=bool(lines))

    # -- helpers ----------------------------------------------------------------------------

    def service_for(self, requested: str | None, problem: str) -> tuple[str | None, int]:
        text = f"{requested or ''} {problem}".lower()
        for s in self.profile.services:
            if (requested and s.name.lower() == requested.lower()) or any(
                k in text for k in s.keywords
            ):
                return s.name, s.visit_minutes
        return requested, self.profile.slot_minutes

    def _write(self, what: str, write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A backend call; any failure becomes StorageDown, logged without the values (a
        database error's text carries the statement's parameters: the caller's words)."""
        try:
            return write(*args, **kwargs)
        except Exception as exc:
            log.error(
                "call %s: %s failed, storage unavailable (%s)",
                self.call_sid,
                what,
                type(exc).__name__,
            )
            raise StorageDown(what) from exc

    def _keep(self, kind: str, args: dict[str, Any]) -> tuple[bool, Any]:
        """Store a record the call must not lose: (True, what the backend returned). A
        refused write goes to `facts.unsaved` as (kind, args), for save_unsaved():
        (False, None)."""
        what, write = {
            "message": ("take_message", self._message),
            "handoff": ("hand_off", self._hand_off),
            "consent": ("consent", self._consent),
        }[kind]
        # On the list until known stored: a write that never comes back (a partitioned
        # database) is still kept with the call's record.
        pending = (kind, args)
        self.facts.unsaved.append(pending)
        try:
            result = self._write(what, write, args)
        except StorageDown:
            return False, None
        with contextlib.suppress(ValueError):
            self.facts.unsaved.remove(pending)
        return True, result

    def _message(self, fields: dict[str, Any]) -> int:
        return self.backend.take_message(self.profile.id, self.call_sid, fields)

    def _hand_off(self, args: dict[str, Any]) -> int:
        return self.backend.hand_off(
            self.profile.id, self.call_sid, self.profile.on_call, args["reason"], args["summary"]
        )

    def _consent(self, args: dict[str, Any]) -> None:
        self.backend.record_consent(
            self.profile.id, self.caller_number, args["opt_in"], SMS_CONSENT_WORDING, self.call_sid
        )

    def _no_booking(self) -> dict[str, Any]:
        return {
            "available": False,
            "reason": f"{self.profile.name} doesn't book visits by phone.",
            "alternatives": [],
            "next_step": "take_message",
        }

    def _booked(self, start: datetime, end: datetime) -> int:
        return self._write("count_booked", self.backend.count_booked, self.profile.id, start, end)

    def _free(self, slot: datetime) -> bool:
        end = slot + timedelta(minutes=self.profile.slot_minutes)
        return self._booked(calendar.utc(slot), calendar.utc(end)) < self.profile.visits_per_slot
