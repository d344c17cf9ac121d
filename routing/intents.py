"""Reading a caller's words: yes/no, goodbye, emergencies, requests, names, numbers.

Keyword rules, deliberately plain: they run offline in microseconds and a test can say
exactly what they do. The LLM policy handles what they miss."""

from __future__ import annotations

import re

from routing.spoken import numbers_to_digits, spoken_digits
from storage.profiles import BusinessProfile
from transcripts.words import words


def has_any(text: str, phrases: tuple[str, ...] | list[str]) -> str | None:
    """The first phrase found as whole words in text."""
    padded = f" {' '.join(words(text))} "
    for phrase in phrases:
        if f" {' '.join(words(phrase))} " in padded:
            return phrase
    return None


def has_near(text: str, phrases: tuple[str, ...] | list[str], gap: int = 2) -> str | None:
    """The first phrase whose words appear in order with at most `gap` words between each
    two: "pipe burst" is in "a pipe just burst", "water everywhere" in "water is everywhere".
    For emergency rules, where a missed match costs far more than a loose one."""
    said = words(text)
    for phrase in phrases:
        wanted = words(phrase)
        if wanted and _in_order(said, wanted, gap):
            return phrase
    return None


def _in_order(said: list[str], wanted: list[str], gap: int) -> bool:
    for start, word in enumerate(said):
        if word != wanted[0]:
            continue
        at, ok = start, True
        for w in wanted[1:]:
            window = said[at + 1 : at + 2 + gap]
            if w not in window:
                ok = False
                break
            at = at + 1 + window.index(w)
        if ok:
            return True
    return False


YES = (
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "correct",
    "that's right",
    "right",
    "sounds good",
    "ok",
    "okay",
    "please do",
    "absolutely",
    "of course",
    "go ahead",
    "that works",
    "perfect",
    "you can",
    "fine",
)
NO = ("no", "nope", "not", "don't", "do not", "wrong", "incorrect", "nah", "rather not")
GOODBYE = (
    "goodbye",
    "good bye",
    "bye",
    "that's all",
    "that is all",
    "that's it",
    "nothing else",
    "no thanks",
    "no thank you",
    "have a good",
)
PERSON = (
    "real person",
    "a person",
    "a human",
    "human being",
    "talk to someone",
    "speak to someone",
    "speak with someone",
    "talk to somebody",
    "representative",
    "operator",
    "dispatcher",
    "live agent",
    "talk to a technician",
    "speak to a technician",
    "manager",
)
GAS = ("gas smell", "smell gas", "smells like gas", "gas leak", "smell of gas", "rotten eggs")
FREEZING = ("freezing", "below zero", "frozen", "pipes freezing", "ice cold")
NO_HEAT = ("no heat", "furnace", "heater", "heating", "boiler", "heat")
MESSAGE = (
    "bill",
    "billing",
    "charge",
    "charged",
    "invoice",
    "payment",
    "refund",
    "complaint",
    "complain",
    "call me back",
    "call back",
    "callback",
    "speak with the owner",
    "estimate",
    "quote",
    "receipt",
    "warranty",
)
BOOKING = (
    "book",
    "appointment",
    "schedule",
    "technician",
    "come out",
    "send someone",
    "repair",
    "fix",
    "broken",
    "not working",
    "stopped working",
    "leak",
    "leaking",
    "clogged",
    "clog",
    "backed up",
    "won't drain",
    "install",
    "replace",
    "service",
    "maintenance",
    "tune up",
    "inspection",
    "no hot water",
)
HOURS = ("open", "hours", "close", "closing", "opening")
AREA = ("service area", "serve", "do you cover", "come to", "areas", "in my area")
SERVICES = (
    "what services",
    "do you do",
    "do you fix",
    "do you repair",
    "do you work on",
    "do you install",
    "do you handle",
    "services do you",
)


def is_yes(text: str) -> bool:
    return has_any(text, YES) is not None and not (
        has_any(text, NO) and not has_any(text, ("yes", "yeah", "correct"))
    )


def is_no(text: str) -> bool:
    return has_any(text, NO) is not None and not has_any(text, ("yes", "yeah", "correct"))


def emergency(text: str, profile: BusinessProfile) -> str | None:
    """The emergency the caller describes, if any: these go to a person at once."""
    if has_any(text, GAS):
        return "gas smell"
    if has_any(text, NO_HEAT) and has_any(text, FREEZING):
        return "no heat in freezing weather"
    rule = has_near(text, list(profile.emergency_rules))
    if rule in ("no heat",) and not has_any(text, FREEZING):
        return None  # a cold house is a booking; a freezing one is an emergency
    return rule


def extract_name(text: str) -> str | None:
    cleaned = re.sub(
        r"^(hi|hello|yes|yeah|sure|okay|ok|um|uh)[,.!\s]+", "", text.strip(), flags=re.I
    )
    m = re.search(r"(?:my name is|name's|this is|it's|i am|i'm|call me)\s+(.+)", cleaned, re.I)
    name = (m.group(1) if m else cleaned).strip(" .,!?")
    name = re.split(r"[,.!?]| and | from | at ", name)[0].strip()
    parts = [p for p in name.split() if p.isalpha() or "'" in p or "-" in p]
    if not 1 <= len(parts) <= 4:
        return None
    return " ".join(p[:1].upper() + p[1:] for p in parts)


def extract_phone(text: str) -> str | None:
    """A spoken or written US phone number -> E.164."""
    digits = "".join(c for c in spoken_digits(text) if c.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{digits}"
    if len(digits) == 10:
        return f"+1{digits}"
    return None


_INTRODUCED = re.compile(
    r"\b(?:my name is|my name's|name is|this is|i'm|i am)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"
)
_STREET = re.compile(
    r"\b(\d{1,6}(?:\s+[A-Za-z0-9.'-]+){1,4}?\s+(?:street|st|avenue|ave|road|rd|drive|dr|lane|"
    r"ln|boulevard|blvd|court|ct|way|place|pl|circle|terrace|parkway|pkwy|highway|hwy)\b\.?)",
    re.I,
)
DAY_WORDS = (
    "today",
    "tomorrow",
    "tonight",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "next week",
    "this week",
    "weekend",
)


def introduced_name(text: str) -> str | None:
    """A name the caller volunteered ("this is James Carter"), not a guess at any words."""
    m = _INTRODUCED.search(text)
    return m.group(1) if m else None


def find_address(text: str) -> str | None:
    """A street address inside a longer sentence ("...I'm at 422 Oak Street, thanks")."""
    m = _STREET.search(numbers_to_digits(text))
    return m.group(1).rstrip(".") if m else None


def without_address(text: str) -> str:
    """The sentence minus its street address, so "422" is not read as a time."""
    return _STREET.sub(" ", numbers_to_digits(text))


def mentions_day(text: str) -> bool:
    return has_any(text, DAY_WORDS) is not None
