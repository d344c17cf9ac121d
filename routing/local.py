"""The local receptionist: no network, deterministic, good enough to run a small
business's line. It books visits, hands emergencies and requests for a person to the
dispatcher, takes messages, and answers what the profile answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from routing import intents, keypad
from routing.acts import EndCall, ReplyPart, Speak, Transfer
from routing.booking import FIELDS, MAX_READBACKS, Booking, correction
from routing.fields import streets_of
from routing.message import ASK_SAME_NUMBER, Note, callback_step, note_from
from routing.profile_answers import answer_question
from routing.tools import SMS_CONSENT_WORDING, ReceptionTools
from storage.profiles import BusinessProfile
from transcripts.heard import Heard

log = logging.getLogger(__name__)

ANYTHING_ELSE = "Is there anything else I can help you with?"
CANT_BOOK_NOW = (
    "Sorry, I can't reach our booking system right now. Let me take your details so "
    "someone calls you back."
)
TROUBLE = (
    "Sorry, I'm having trouble with our system right now. Let me take your details so "
    "someone calls you back."
)


# Questions whose answer is a yes, a no or a detail: "that's it" there is not goodbye.
YES_NO_QUESTIONS = ("confirm", "sms", "msg_callback_check", "spell_name", "spell_street", "fix")


class LocalPolicy:
    def __init__(self, profile: BusinessProfile, tools: ReceptionTools) -> None:
        self.profile, self.tools = profile, tools
        self.booking: Booking | None = None
        self.note: Note | None = None
        self.awaiting: str | None = None  # what the last question asked for
        self.first_words: str | None = None  # the caller's opening line, for summaries
        self.streets = streets_of(profile.vocabulary)  # a misheard street is matched to these
        self.heard = Heard("")  # the turn being answered, as the recognizer heard it
        self._last_question: str | None = None

    async def greet(self) -> AsyncIterator[ReplyPart]:
        p = self.profile
        text = p.greeting or f"Thanks for calling {p.name}. How can I help you today?"
        if p.recording_enabled:
            text += " This call may be recorded."
        yield Speak(text)

    async def on_silence(self, prompts_so_far: int) -> AsyncIterator[ReplyPart]:
        if prompts_so_far == 0:
            yield Speak("Are you still there? How can I help you?")
        elif prompts_so_far == 1:
            yield Speak("I'm sorry, I can't hear anything. Are you still on the line?")
        else:
            yield Speak("I'll hang up now. Please call us back any time. Goodbye.")
            yield EndCall()

    async def finish_call(self, caller_lines: list[str]) -> str:
        return await self.tools.settle(caller_lines)

    async def after_missed_transfer(self, reason: str) -> AsyncIterator[ReplyPart]:
        """The dispatcher did not pick up: take a message for an urgent call back."""
        self.note = Note(reason=reason)
        self._remember()
        self.awaiting = "msg_name"
        yield Speak(
            "Sorry, our dispatcher couldn't pick up. I'll take a message so they can "
            "call you right back. What's your name?"
        )

    async def respond(
        self, caller_text: str, heard: Heard | None = None
    ) -> AsyncIterator[ReplyPart]:
        self.heard = heard or Heard(caller_text)
        try:
            parts = await self._decide(caller_text)
        except Exception as exc:  # never silence: the caller hears why and the call goes on
            log.error(
                "call %s: the local policy failed (%s), taking a message",
                self.tools.call_sid,
                type(exc).__name__,
            )
            parts = self._to_message(TROUBLE)
        finally:
            self._remember()
        for part in parts:
            yield part

    async def _decide(self, text: str) -> list[ReplyPart]:
        if self.heard.keyed:
            return await self._keyed(text)
        self.first_words = self.first_words or text
        urgent = intents.emergency(text, self.profile)
        if urgent:
            return await self._hand_off(f"emergency: {urgent}", urgent == "gas smell")
        if intents.has_any(text, intents.PERSON):
            return await self._hand_off("caller asked for a person", False)
        if self.awaiting in YES_NO_QUESTIONS and (
            intents.is_yes(text) or not intents.has_any(text, intents.GOODBYE)
        ):
            return await self._answer_awaited(text)
        if intents.has_any(text, intents.GOODBYE) or (
            self.awaiting == "anything_else" and intents.is_no(text)
        ):
            return [Speak(f"Thank you for calling {self.profile.name}. Goodbye!"), EndCall()]
        if self.awaiting and self.awaiting != "anything_else":
            return await self._answer_awaited(text)
        return await self._new_request(text)

    async def _new_request(self, text: str) -> list[ReplyPart]:
        answer = answer_question(self.profile, self.tools.now(), text)
        if answer:
            self.tools.facts.questions_answered += 1
            self.awaiting = "anything_else"
            return [Speak(f"{answer} {ANYTHING_ELSE}")]
        if intents.has_any(text, intents.MESSAGE):
            self.note = Note(reason=text.strip())
            return self._ask("msg_name", "I can take a message for the team. May I have your name?")
        if intents.has_any(text, intents.BOOKING) or self._service_named(text):
            if not self.tools.can_book:  # nothing to book: no technician is promised
                self.note = Note(reason=text.strip())
                return self._ask(
                    "msg_name",
                    f"I'm sorry to hear that. I'll have someone from {self.profile.name} "
                    "call you back. May I have your name?",
                )
            self.booking = Booking(problem=text.strip())
            return await self._next_for_booking(
                self.booking, text, "I'm sorry to hear that. I can get a technician out to you."
            )
        if self.awaiting == "anything_else" and intents.is_yes(text):
            return self._ask(None, "Sure, what else can I help with?")
        return self._ask(
            None, f"{keypad.menu(self.profile.name, self._offers())} What can I do for you?"
        )

    async def _answer_awaited(self, text: str) -> list[ReplyPart]:
        b, n = self.booking, self.note
        match self.awaiting:
            case "name" if b:
                if not b.take_name(text, self.heard):
                    return self._ask("name", "Sorry, what name should I put the visit under?")
                assert b.name
                return await self._next_for_booking(b, text, f"Thanks, {b.name.split()[0]}.")
            case "address" if b:
                if not b.take_address(text, self.heard, self.streets):
                    return self._ask("address", "Could you give me the street number and street?")
                return await self._next_for_booking(b, text, "Thank you.")
            case "spell_name" | "spell_street" if b:
                b.take_spelling(
                    self.awaiting.removeprefix("spell_"), text, self.heard, self.streets
                )
                return await self._next_for_booking(b, text, "Thank you.")
            case "time" if b:
                return await self._choose_time(b, text)
            case "confirm" if b:
                # "Right" in "no, the name is Wright, W R I G H T" is no yes: a reply that
                # gives a field is a correction.
                if intents.is_yes(text) and correction(text, self.heard) not in FIELDS:
                    return await self._book(b)
                return await self._correct(b, text)
            case "fix" if b:
                return await self._correct(b, text)
            case "sms":
                agreed = intents.is_yes(text)
                result = await self._use(self.tools.record_sms_consent, agreed)
                reply = "Great, we'll text you a confirmation." if agreed else "No problem."
                if agreed and not result.get("recorded"):
                    reply = (
                        "Sorry, I can't save that right now, so we won't text you this time. "
                        "Your visit is still booked."
                    )
                return self._ask("anything_else", f"{reply} {ANYTHING_ELSE}")
            case "msg_name" if n:
                n.name = intents.extract_name(text) or text.strip(" .")
                return self._ask("msg_callback", ASK_SAME_NUMBER)
            case "msg_callback" | "msg_callback_check" if n:
                return self._ask(*callback_step(n, self.awaiting, text, self.tools.caller_number))
            case "msg_time" if n:
                n.best_time = text.strip(" .")
                self._remember()
                await self._use(
                    self.tools.take_message,
                    n.name or "",
                    n.reason or "",
                    n.callback,
                    n.best_time,
                    n.text or n.reason,
                )
                # Stored now, or kept with this call and stored when it ends: either way
                # the team gets it.
                return self._ask(
                    "anything_else",
                    f"Thank you, {n.name or 'I have it'}. I'll pass "
                    f"your message to the team and someone will call you back. "
                    f"{ANYTHING_ELSE}",
                )
        return await self._new_request(text)

    async def _next_for_booking(self, b: Booking, text: str, ack: str) -> list[ReplyPart]:
        """Take whatever else the caller volunteered, check a word the recognizer doubted,
        then ask for what is still missing."""
        if not b.name and intents.introduced_name(text):
            b.take_name(text, self.heard)
        if not b.address and intents.find_address(text):
            b.take_address(text, self.heard, self.streets)
        if b.time_hint is None and intents.mentions_day(text):
            b.time_hint = intents.without_address(text)
        check = self._check(b, ack)
        if check:
            return check
        if not b.name:
            return self._ask("name", f"{ack} May I have your name?")
        if not b.address:
            return self._ask("address", f"{ack} What's the address where you need the service?")
        if b.when:  # a field corrected after the read-back: read it back again
            return self._read_back(b)
        if b.time_hint:
            hint, b.time_hint = b.time_hint, ""
            return await self._choose_time(b, hint)
        return self._ask("time", f"{ack} When would you like the technician to come by?")

    # ---- the fields, as heard and made right -------------------------------------------

    def _check(self, b: Booking, ack: str) -> list[ReplyPart] | None:
        question = b.doubt_question()
        return self._ask(question[0], f"{ack} {question[1]}") if question else None

    def _read_back(self, b: Booking) -> list[ReplyPart]:
        return self._ask("confirm", b.read_back(self._job(b)))

    async def _correct(self, b: Booking, text: str) -> list[ReplyPart]:
        """The read-back was wrong: what the caller says replaces that field, and the rest
        stands. Still wrong after MAX_READBACKS: a person calls back to sort it out."""
        if b.readbacks >= MAX_READBACKS:
            return self._booking_to_message(
                b, "Sorry for the trouble. I'll have someone call you back to confirm."
            )
        match correction(text, self.heard):
            case "address":
                b.take_address(text, self.heard, self.streets)
            case "name":
                b.take_name(text, self.heard)
            case "time":
                b.when = None
                return await self._choose_time(b, text)
            case "ask_name":
                return self._ask("name", "Sorry about that. What's the right name?")
            case "ask_address":
                return self._ask("address", "Sorry about that. What's the right address?")
            case "ask_time":
                b.when = None
                return self._ask("time", "No problem. What day and time would work better?")
            case "ask_which":
                return self._ask(
                    "fix",
                    "Sorry about that. What should I change: the name, the address or the time?",
                )
        return self._check(b, "Thank you.") or self._read_back(b)

    # ---- the keypad -------------------------------------------------------------------

    async def _keyed(self, keys: str) -> list[ReplyPart]:
        """Keys pressed on the phone: a call-back number, a ZIP code or a menu choice."""
        digits = "".join(c for c in keys if c.isdigit())
        n, phone = self.note, intents.extract_phone(digits)
        if n is not None and self.awaiting in ("msg_callback", "msg_callback_check") and phone:
            return self._ask(*callback_step(n, "msg_callback", digits, self.tools.caller_number))
        if len(digits) == 5:
            return [Speak(keypad.zip_answer(self.profile.service_area, digits)), *self._repeat()]
        picked = keypad.choice(self._offers(), digits)
        if picked and self.awaiting in (None, "anything_else"):
            if picked == keypad.BOOK:
                return self._ask(None, "Sure, let's book a visit. What's the problem?")
            if picked == keypad.PERSON:
                return await self._hand_off("caller asked for a person", False)
            self.note = Note(reason="call back")
            return self._ask("msg_name", "Sure, I'll take a message. May I have your name?")
        return [Speak("Sorry, I didn't get that entry."), *self._repeat()]

    def _repeat(self) -> list[ReplyPart]:
        """The question the caller still owes an answer to, asked again."""
        return [
            Speak(
                self._last_question
                or f"{keypad.menu(self.profile.name, self._offers())} What can I do for you?"
            )
        ]

    async def _choose_time(self, b: Booking, text: str) -> list[ReplyPart]:
        if b.alternatives and (intents.is_yes(text) or intents.has_any(text, ("first", "earlier"))):
            text = b.alternatives[0]
        elif b.alternatives and intents.has_any(text, ("second", "later", "other")):
            text = b.alternatives[min(1, len(b.alternatives) - 1)]
        check = await self._use(self.tools.check_availability, text)
        if check.get("unavailable"):
            return self._booking_to_message(b)
        if check["available"]:
            b.when, b.when_spoken, b.alternatives = check["time"], check["spoken"], []
            return self._read_back(b)
        b.alternatives = check.get("alternatives", [])
        offers = check.get("alternatives_spoken", [])
        if not offers:
            return self._ask("time", f"{check['reason']} What day and time would work for you?")
        options = offers[0] if len(offers) == 1 else f"{offers[0]} or {offers[1]}"
        return self._ask("time", f"{check['reason']} I can offer {options}. Would that work?")

    async def _book(self, b: Booking) -> list[ReplyPart]:
        result = await self._use(
            self.tools.book_appointment,
            b.name or "",
            b.address or "",
            b.problem or "",
            b.when or "",
        )
        if result.get("unavailable"):
            return self._booking_to_message(b)
        if not result["booked"]:
            b.when = None
            b.alternatives = result.get("alternatives", [])
            offers = result.get("alternatives_spoken", [])
            extra = f" I can offer {offers[0]}." if offers else ""
            return self._ask(
                "time",
                f"Sorry, {result.get('reason', 'that slot just filled up.')}"
                f"{extra} What time would work?",
            )
        return self._ask(
            "sms", f"You're all set. Your visit is {result['spoken']}. {SMS_CONSENT_WORDING}"
        )

    async def _hand_off(self, reason: str, gas: bool) -> list[ReplyPart]:
        summary = _short(self.first_words or reason, 120)
        if self.booking and self.booking.address:
            summary += f" Address: {self.booking.address}."
        result = await self._use(self.tools.transfer_to_dispatcher, reason, summary)
        safety = (
            ("For your safety, please leave the house now and call the gas company from outside. ")
            if gas
            else ""
        )
        if not result.get("transferring"):
            self.note = Note(reason=reason, text=self.first_words)
            danger = "If anyone is in danger, call 911. " if reason.startswith("emergency") else ""
            return self._ask(
                "msg_name",
                f"{safety}{danger}Nobody is on call right now, so I'll take a "
                "message for an urgent call back. What's your name?",
            )
        line = "I'm connecting you to our on-call dispatcher now."
        if reason.startswith("emergency") and not gas:
            line = "That sounds urgent. " + line
        self.awaiting = None
        return [Speak(f"{safety}{line}"), Transfer()]

    def _offers(self) -> list[str]:
        return keypad.offers(self.tools.can_book, self.tools.can_transfer)

    def _booking_to_message(self, b: Booking, line: str = CANT_BOOK_NOW) -> list[ReplyPart]:
        """The booking can't be made: what the caller told us becomes a message."""
        return self._to_message(line, b)

    def _to_message(self, line: str, b: Booking | None = None) -> list[ReplyPart]:
        n = note_from(self.note or Note(), b or self.booking, self.first_words)
        self.note, self.booking = n, None
        if not n.name:
            return self._ask("msg_name", f"{line} May I have your name?")
        return self._ask("msg_callback", f"{line} {ASK_SAME_NUMBER}")

    async def _use(self, tool: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """A tool off the event loop (they touch the database). A failure the tool did not
        handle itself reads as the system being unavailable: the dialogue goes on."""
        try:
            return await asyncio.to_thread(tool, *args)
        except Exception as exc:
            log.error(
                "call %s: %s failed (%s)",
                self.tools.call_sid,
                getattr(tool, "__name__", "a tool"),
                type(exc).__name__,
            )
            return {"unavailable": True, "reason": "Our system can't be reached right now."}

    def _remember(self) -> None:
        """Hand what the caller told us to the call's facts, for the end of the call."""
        b, n = self.booking, self.note
        if b is not None:
            self.tools.hear(problem=b.problem, name=b.name, address=b.address)
        if n is not None:
            self.tools.hear(
                problem=n.reason, name=n.name, callback=n.callback, best_time=n.best_time
            )

    def _job(self, b: Booking) -> str:
        """How to name the job when reading a booking back."""
        service, _ = self.tools.service_for(None, b.problem or "")
        return service or "a service visit"  # not the caller's words as heard: they may be wrong

    def _service_named(self, text: str) -> bool:
        return any(intents.has_any(text, list(s.keywords)) for s in self.profile.services)

    def _ask(self, awaiting: str | None, text: str) -> list[ReplyPart]:
        self.awaiting = awaiting
        # The question itself (the last sentence), to ask again after a keypad slip.
        sentences = [s for s in text.replace("? ", "?|").replace(". ", ".|").split("|") if s]
        self._last_question = sentences[-1] if awaiting and sentences else None
        return [Speak(text)]


def _short(text: str | None, limit: int = 60) -> str:
    text = (text or "").strip().rstrip(".!?")
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."
