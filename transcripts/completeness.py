"""Does a transcript read as a finished turn? Decides how long to wait before answering:
a complete sentence gets a short hangover, a half-said number or address a long one, and
a one- or two-word sentence ("Yes." "Hi." "Okay.") the usual one: it is as often the start
of a longer answer ("Yes, that's correct.") as the whole of it."""

from __future__ import annotations

from typing import Literal

Hangover = Literal["short", "usual", "long"]

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


# A sentence ending in one of these may go on ("...Oak Street, apartment four").
_MAY_CONTINUE = {"number", "street", "avenue", "road", "drive", "lane", "court", "boulevard"}


def _last_word(text: str) -> str:
    words = text.strip().lower().rstrip(".!?,").split()
    return words[-1].strip(",.") if words else ""


def _mid_sentence(last: str) -> bool:
    # "...eleven eighty", "I'm at", "my number is five five five"
    return not last or last in _OPEN_ENDINGS or last in _NUMBER_WORDS or last.isdigit()


def looks_complete(text: str) -> bool:
    last = _last_word(text)
    return not _mid_sentence(last) and text.rstrip()[-1:] in ".!?" and last not in _MAY_CONTINUE


def hangover_for(text: str) -> Hangover:
    """Mid-sentence ("I'm at") and mid-number ("555.": people pause between the groups of a
    phone number) wait long. An unpunctuated fragment (Whisper often leaves short ones so),
    a short sentence, or a street that Whisper heard as the end of a sentence ("...1180
    Birch Avenue.", which may still go on) gets the usual wait."""
    if _mid_sentence(_last_word(text)):
        return "long"
    return "short" if looks_complete(text) and len(text.split()) >= 3 else "usual"
