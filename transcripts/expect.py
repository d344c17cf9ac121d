"""What the agent's last words ask the caller for, read from the words themselves, so that
any policy (rules or a model) gets the recognizer's help: "Could you spell that?" is
answered with letters, "What number...?" with digits."""

from __future__ import annotations

import re

from transcripts.heard import Expect

_LETTERS = re.compile(r"\bspell", re.I)
_DIGITS = re.compile(
    r"\b(phone number|number should we|zip code|key it in|call-?back number)\b", re.I
)


def expectation_after(agent_text: str) -> Expect | None:
    last = re.split(r"(?<=[.!?])\s+", agent_text.strip())[-2:]  # the question is at the end
    tail = " ".join(last)
    if _LETTERS.search(tail):
        return "letters"
    if _DIGITS.search(tail):
        return "digits"
    return None
