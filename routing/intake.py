"""A small local receptionist: acknowledge, then ask for the next detail a dispatcher needs
(problem, name, address, time). Deterministic and offline."""

from __future__ import annotations

import re

from routing.acts import Act, EndCall, Say
from storage.calls import BusinessInfo

_GOODBYE = re.compile(r"\b(good ?bye|bye|that'?s all|hang up|no,? thanks?)\b", re.I)
_QUESTIONS = [
    ("problem", "What seems to be the problem?"),
    ("name", "May I have your name, please?"),
    ("address", "What is the address where you need the service?"),
    ("time", "When would you like a technician to come by?"),
]


class IntakePolicy:
    def __init__(self, business: BusinessInfo, caller_number: str) -> None:
        self.business = business
        self.caller_number = caller_number
        self.answers: dict[str, str] = {}
        self._asked: str | None = "problem"

    async def greet(self) -> Act:
        b = self.business
        return Say(b.greeting or f"Thanks for calling {b.name}. How can I help you today?")

    async def respond(self, caller_text: str) -> Act:
        if _GOODBYE.search(caller_text):
            return EndCall(f"Thank you for calling {self.business.name}. Goodbye!")
        if self._asked is not None:
            self.answers[self._asked] = caller_text
        for slot, question in _QUESTIONS:
            if slot not in self.answers:
                self._asked = slot
                return Say(f"Thank you. {question}")
        self._asked = None
        return Say(
            "Thank you, I have all the details. Someone from our team will confirm your visit. "
            "Is there anything else I can help with?"
        )
