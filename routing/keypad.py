"""What the line offers on the phone's keypad: a menu when the caller is stuck, and ZIP
codes checked against the service area. Keyed digits cannot be misheard, so numbers that
matter (a call-back number, a ZIP) can always be entered this way."""

from __future__ import annotations

# What the line can do, as the agent offers it and as a key press names it.
BOOK, PERSON, MESSAGE = "book a visit", "connect you with our on-call dispatcher", "take a message"
_KEY_WORDS = {BOOK: "book a visit", PERSON: "talk to our dispatcher", MESSAGE: "leave a message"}


def offers(can_book: bool, can_transfer: bool) -> list[str]:
    """What the line can do for this business, in menu order: only what its profile allows."""
    return [o for o, ok in ((BOOK, can_book), (PERSON, can_transfer), (MESSAGE, True)) if ok]


def menu(business: str, offered: list[str]) -> str:
    if len(offered) == 1:
        return f"I can take a message and have someone from {business} call you back."
    keys = " ".join(f"Press {i} to {_KEY_WORDS[o]}." for i, o in enumerate(offered, 1))
    if len(offered) == 2:
        return f"I can {offered[0]} or {offered[1]}. {keys}"
    return f"I can {', '.join(offered[:-1])}, or {offered[-1]}. {keys}"


def choice(offered: list[str], digits: str) -> str | None:
    """The offer a single key picks, if any."""
    if len(digits) != 1:
        return None
    return dict(enumerate(offered, start=1)).get(int(digits))


def zip_answer(service_area: tuple[str, ...], zip_code: str) -> str:
    spoken = " ".join(zip_code)
    if zip_code in service_area:
        return f"Yes, {spoken} is in our service area."
    if any(a.isdigit() for a in service_area):
        return f"Sorry, {spoken} is outside our service area."
    return f"We serve {', '.join(service_area)}." if service_area else "I can't check ZIP codes."
