"""Does a transcript read as a finished turn? Decides how long to wait before answering:
a complete sentence gets a short hangover, a half-said number or address a long one."""

from __future__ import annotations

_OPEN_ENDINGS = {
    "and",
    "or",
    "but",
    "so",
    "because",
    "the",
    "a",
    "an",
    "at",
    "on",
    "in",
    "is",
    "my",
    "to",
    "of",
    "for",
    "with",
    "um",
    "uh",
    "like",
    "about",
    "around",
    "it's",
    "i'm",
    "number",
    "street",
    "avenue",
}
_NUMBER_WORDS = {
    "zero",
    "oh",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
}


def looks_complete(text: str) -> bool:
    words = text.strip().lower().rstrip(".!?,").split()
    if not words:
        return False
    last = words[-1].strip(",.")
    if last in _OPEN_ENDINGS or last in _NUMBER_WORDS or last.isdigit():
        return False  # "...eleven eighty", "I'm at", "my number is five five five"
    return text.rstrip()[-1:] in ".!?"
