"""A booking as the receptionist gathers it: each field taken from what was heard, made right
where it can be (the business's street names, a spelling), and checked where the recognizer
doubted it. A caller's correction replaces one field; the rest stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from routing import intents
from routing.fields import doubted, known_street, letters_in, respell, split_address
from routing.spelling import as_name, closest, spell_out
from routing.spoken import normalize_address
from transcripts.heard import Heard

FIELDS = ("address", "name", "time")  # corrections that give the field's new value
MAX_READBACKS = 3  # read back this often and still wrong: someone calls back instead

# What a caller's answer to a wrong read-back changes: a field given in the same breath, or
# the field named ("the name is wrong"), or nothing said yet ("no").
Correction = Literal[
    "address", "name", "time", "ask_name", "ask_address", "ask_time", "ask_which"
]  # fmt: skip


@dataclass
class Booking:
    problem: str | None = None
    name: str | None = None
    address: str | None = None
    when: str | None = None  # ISO time of the slot the caller accepted
    when_spoken: str | None = None  # that slot as the caller heard it
    time_hint: str | None = None  # words that named a day before we asked ("" once used)
    alternatives: list[str] = field(default_factory=list)
    # A word the recognizer doubted, per field ("name", "street"), not yet checked.
    doubts: dict[str, str] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)  # fields checked once: never twice
    spelled: dict[str, str] = field(default_factory=dict)  # field -> the word spelled
    readbacks: int = 0

    def take_name(self, text: str, heard: Heard) -> bool:
        name = intents.introduced_name(text) or intents.extract_name(text)
        letters = letters_in(text, heard)
        if letters and self.name and (not name or len(name.split()) < 2):
            name = self.name  # "no, it's H E R N..." corrects the surname, not the whole name
        if letters:
            name = respell(name, name.split()[-1], letters) if name else as_name(letters)
            self.spelled["name"] = as_name(letters)
        if not name:
            return False
        self.name = name
        self.doubts.pop("name", None)
        if not letters and (word := doubted(name, heard)):
            self.doubts["name"] = word
            self.checked.discard("name")  # a name said again may be checked again
        return True

    def take_address(self, text: str, heard: Heard, streets: list[str]) -> bool:
        address = intents.find_address(text) or normalize_address(text)
        if not any(c.isdigit() for c in address):
            return False
        address, known = known_street(address, streets)
        self.address = address
        self.doubts.pop("street", None)
        parts = split_address(address)
        if not known and parts and (word := doubted(parts[1], heard)):
            self.doubts["street"] = word
        return True

    def take_spelling(self, what: str, text: str, heard: Heard, streets: list[str]) -> None:
        """The answer to "could you spell...": the doubted word becomes the spelled one. A
        caller who says "yes, that's right" instead keeps the word as heard."""
        word = self.doubts.pop(what, None)
        letters = letters_in(text, heard)
        if not letters or (intents.is_yes(text) and len(letters) < 3):
            return
        if what == "name" and self.name:
            self.name = respell(self.name, word or self.name.split()[-1], letters)
            self.spelled["name"] = as_name(letters)
        elif what == "street" and self.address and (parts := split_address(self.address)):
            number, street, suffix = parts
            names = [s.rsplit(" ", 1)[0] for s in streets]
            # A spelling near a street the business knows is that street.
            hit = closest(as_name(letters), names, max_ratio=0.4)
            if hit is not None:
                self.address = f"{number} {streets[names.index(hit)]}"
            else:
                street = respell(street, word or street.split()[-1], letters)
                self.address = " ".join(x for x in (number, street, suffix) if x)
                self.spelled["street"] = as_name(letters)

    def doubt_question(self) -> tuple[str, str] | None:
        """(what is awaited, the question) for one word the recognizer doubted: the caller
        spells it. At most one per field."""
        for what, question in (
            ("name", "Could you spell your last name for me?"),
            ("street", "Could you spell the street name for me?"),
        ):
            word = self.doubts.get(what)
            if word and what not in self.checked:
                self.checked.add(what)
                if what == "name" and self.name and word != self.name.split()[-1]:
                    question = "Could you spell your first name for me?"
                return f"spell_{what}", question
        return None

    def read_back(self, job: str) -> str:
        self.readbacks += 1
        name = self.name or ""
        if "name" in self.spelled:
            name += f", {spell_out(self.spelled['name'])}"
        address = self.address or ""
        if "street" in self.spelled:
            address += f", {spell_out(self.spelled['street'])}"
        return (
            f"Let me read that back. {name}, at {address}, {self.when_spoken}, "
            f"for {job}. Is that correct?"
        )


def correction(text: str, heard: Heard) -> Correction:
    """Which field a caller's answer to a wrong read-back is about."""
    said = intents.has_any
    if intents.find_address(text) or (
        said(text, ("address", "street", "live at")) and any(c.isdigit() for c in text)
    ):
        return "address"
    if (letters_in(text, heard) and not intents.mentions_day(text)) or (
        said(text, ("name is", "name's", "my name", "it's")) and intents.extract_name(text)
    ):
        return "name"
    if intents.mentions_day(text) or said(text, ("morning", "afternoon", "o'clock", "pm")):
        return "time"
    if said(text, ("name",)):
        return "ask_name"
    if said(text, ("address", "street")):
        return "ask_address"
    if said(text, ("time", "day", "date", "when")):
        return "ask_time"
    return "ask_which"
