"""What a call produced, and what of the caller's words is worth a call back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transcripts.words import words

# Words that alone say nothing a call back could act on.
_SMALL_TALK = frozenset(
    "hello hi hey hiya yes yeah yep no nope ok okay sure um uh er hm hmm mm ah oh bye goodbye "
    "good morning afternoon evening thanks thank you very much is anyone there anybody still "
    "can hear me are on the line sorry what wait hang on a second sec that's that all it "
    "nothing else fine great alright right".split()
)


def substantive(line: str) -> bool:
    """A caller line that says something beyond hello, yes, thanks and goodbye."""
    return any(w not in _SMALL_TALK for w in words(line))


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
    # What the caller told us so far (problem, name, address, callback, best_time), kept by
    # the policies as the dialogue gathers it: a call that ends early still leaves a message.
    heard: dict[str, str] = field(default_factory=dict)
    # Writes the backend refused, as (kind, arguments), retried by save_unsaved(); kind is
    # "message", "handoff" or "consent".
    unsaved: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

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


def left_message(heard: dict[str, str], said: list[str]) -> str:
    """The message a call that ended early leaves: what was gathered, then the caller's words."""
    known = [
        f"{label}: {heard[key]}"
        for key, label in (("name", "Name"), ("address", "Address"), ("best_time", "Best time"))
        if heard.get(key)
    ]
    spoken = " / ".join(said)
    parts = ["The call ended before anything was arranged.", *(f"{k}." for k in known)]
    if spoken:
        parts.append(f"Caller said: {spoken}")
    return " ".join(parts)
