"""A message for a call back, as the receptionist takes it: who, about what, which number
(read back digit by digit, or keyed in) and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from routing import intents
from routing.spelling import say_digits

if TYPE_CHECKING:
    from routing.booking import Booking

ASK_NUMBER = (
    "What number should we call you back on? You can say it, or key it in on your phone's "
    "keypad and press pound."
)
ASK_BEST_TIME = "And when is the best time to call you back?"
ASK_SAME_NUMBER = "Is the number you're calling from the best one to reach you?"


@dataclass
class Note:
    reason: str | None = None
    name: str | None = None
    callback: str | None = None
    best_time: str | None = None
    text: str | None = None  # more than the reason: what a booking had gathered


def callback_step(note: Note, awaiting: str, text: str, caller_number: str) -> tuple[str, str]:
    """The answer to a question about the call-back number -> (what is awaited next, the
    next question). A number given is read back before it is kept; "no" to the read-back
    asks again; the caller's own number is the default."""
    phone = intents.extract_phone(text)
    if phone and (awaiting == "msg_callback" or phone != note.callback):
        note.callback = phone
        return "msg_callback_check", f"I have {say_digits(phone)}. Is that right?"
    if intents.is_no(text):
        note.callback = None
        return "msg_callback", ASK_NUMBER
    note.callback = note.callback or caller_number
    return "msg_time", ASK_BEST_TIME


def note_from(note: Note, booking: Booking | None, first_words: str | None) -> Note:
    """A booking that cannot be made becomes a message: what it had gathered goes with it."""
    if booking is not None:
        note.reason = note.reason or booking.problem
        note.name = note.name or booking.name
        wanted = booking.when or booking.time_hint
        details = [
            note.reason or "",
            f"Address: {booking.address}." if booking.address else "",
            f"Asked for: {wanted}." if wanted else "",
        ]
        note.text = " ".join(x for x in details if x) or None
    note.reason = note.reason or first_words or "call back"
    return note
