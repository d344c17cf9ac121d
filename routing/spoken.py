"""Spoken numbers and times, as a transcript spells them.

Dates go through dateparser; what it cannot do is the phone-call part: number words
("eleven eighty" is a house number, 1180; "two" in "around two" is 2 PM in business hours)
and day parts ("tomorrow morning at nine")."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import dateparser
from dateparser.search import search_dates

from transcripts.words import words

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_UNITS["oh"] = 0
_TEEN_WORDS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TEENS = {w: i for i, w in enumerate(_TEEN_WORDS.split(), start=10)}
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TENS = {w: 10 * i for i, w in enumerate(_TENS_WORDS.split(), start=2)}
_NUMBER_WORDS = set(_UNITS) | set(_TEENS) | set(_TENS) | {"hundred", "thousand"}
_DAYPARTS = {"morning": "am", "afternoon": "pm", "evening": "pm", "tonight": "pm"}
_FILLER = {
    "around",
    "about",
    "at",
    "ish",
    "o'clock",
    "oclock",
    "please",
    "maybe",
    "say",
    "like",
    "would",
    "be",
    "great",
    "good",
    "works",
    "if",
    "you",
    "can",
    "could",
    "how",
    "what",
    "is",
    "the",
    "in",
    "on",
    "for",
    "a",
    "an",
    "or",
    "so",
    "um",
    "uh",
    "let's",
    "lets",
    "i",
    "guess",
    "think",
    "come",
    "by",
    "fine",
    "sometime",
    "some",
    "time",
    "best",
}


# Whisper writes clock times with a colon ("11:30", "2:30pm"), and a colon splits words.
_CLOCK_TIME = re.compile(r"\b(\d{1,2}):(\d{2})")


def _clock_as_number(text: str) -> str:
    """A clock time as one word that _find_time reads as hour and minutes: "11:30" ->
    "1130 ", "2:30pm" -> "230 pm"."""
    return _CLOCK_TIME.sub(r"\1\2 ", text)


def _spoken_groups(words: list[str]) -> list[str]:
    """Number words -> digit groups, as people say house numbers: "eleven eighty" -> ["11",
    "80"], "four twenty two" -> ["4", "22"], "three hundred five" -> ["305"]."""
    groups: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS:
            value = _TENS[w]
            if i + 1 < len(words) and words[i + 1] in _UNITS and _UNITS[words[i + 1]] > 0:
                value += _UNITS[words[i + 1]]
                i += 1
            groups.append(str(value))
        elif w in _TEENS:
            groups.append(str(_TEENS[w]))
        elif w in _UNITS:
            groups.append(str(_UNITS[w]))
        elif w in ("hundred", "thousand") and groups:
            scale = 100 if w == "hundred" else 1000
            groups[-1] = str(int(groups[-1]) * scale)
            # "three hundred five": the next group fills in below the scale
            if i + 1 < len(words) and words[i + 1] in _NUMBER_WORDS - {"hundred", "thousand"}:
                rest = _spoken_groups(
                    words[i + 1 : i + 3] if words[i + 1] in _TENS else words[i + 1 : i + 2]
                )
                if rest and int(rest[0]) < scale:
                    groups[-1] = str(int(groups[-1]) + int(rest[0]))
                    i += (
                        2
                        if words[i + 1] in _TENS and len(rest[0]) == 2 and rest[0][1] != "0"
                        else 1
                    )
        i += 1
    return groups


def normalize_address(text: str) -> str:
    """'The address is eleven eighty Birch Avenue.' -> '1180 Birch Avenue'."""
    return _strip_lead_in(numbers_to_digits(text))


def numbers_to_digits(text: str) -> str:
    """Spoken numbers as digits, house-number style: 'four twenty two Oak' -> '422 Oak'."""
    out: list[str] = []
    run: list[str] = []
    for tok in text.replace(".", " . ").split():
        word = tok.lower().strip(",")
        if word in _NUMBER_WORDS:
            run.append(word)
            continue
        if run:
            out.append("".join(_spoken_groups(run)))
            run.clear()
        if word == ".":
            continue
        # Whisper writes house numbers in groups too: "11 80 Birch", "4.22 Oak" -> one number.
        if word.isdigit() and out and out[-1].isdigit():
            out[-1] += word
        else:
            out.append(tok)
    if run:
        out.append("".join(_spoken_groups(run)))
    return " ".join(out)


def _strip_lead_in(text: str) -> str:
    """Drop "the address is", "I'm at", "it's" before the actual address."""
    words = text.split()
    for i, w in enumerate(words):
        if w[0].isdigit():
            return " ".join(words[i:]).rstrip(" .!?")
    lowered = text.lower()
    for lead in ("the address is", "my address is", "i'm at", "i am at", "it's", "it is"):
        if lowered.startswith(lead):
            return text[len(lead) :].strip(" .,!?")
    return text.strip(" .!?")


@dataclass(frozen=True)
class When:
    day: date | None
    at: time | None  # None: the caller named a day but no time

    def combine(self, tz) -> datetime | None:  # type: ignore[no-untyped-def]
        if self.day is None or self.at is None:
            return None
        return datetime.combine(self.day, self.at, tzinfo=tz)


def parse_when(text: str, now: datetime) -> When:
    """'Thursday afternoon around two' -> the coming Thursday, 14:00 (in now's time zone)."""
    date_words, said = _split_dates(words(_clock_as_number(text)))
    ampm = next((_DAYPARTS[w] for w in said if w in _DAYPARTS), None)
    if "noon" in said or "midday" in said:
        hour, minute, ampm = 12, 0, "pm"
    else:
        hour, minute, ampm = _find_time(said, ampm)
    day_words = date_words + [
        w
        for w in said
        if w not in _FILLER
        and w not in _DAYPARTS
        and w not in _NUMBER_WORDS
        and not w.isdigit()
        and w not in ("am", "pm", "noon", "midday")
        and w not in ("a", "p", "m")
    ]
    if date_words and date_words[0].isdigit():  # "Friday the 4th": the date decides
        day_words = date_words[:1]
    day = _parse_day(" ".join(day_words), now) if day_words else None
    if hour is None and ampm is not None:
        hour, minute = (9, 0) if ampm == "am" else (14, 0)  # "tomorrow morning": a sensible start
    at = None
    if hour is not None:
        if ampm == "pm" and hour < 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        elif ampm is None and 1 <= hour <= 6:
            hour += 12  # "at two" during business hours means the afternoon
        at = time(hour % 24, minute)
    if day is None and at is not None:
        day = now.date() if at > now.time() else now.date() + timedelta(days=1)
    return When(day, at)


_MONTHS = {
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
_ORDINALS = {
    w: i
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
        "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
        "twentieth".split(),
        start=1,
    )
}
_ORDINALS.update({"thirtieth": 30, "thirty-first": 31})


def _ordinal(word: str) -> int | None:
    if word in _ORDINALS:
        return _ORDINALS[word]
    if word[:-2].isdigit() and word[-2:] in ("st", "nd", "rd", "th"):
        return int(word[:-2])
    return None


def _split_dates(words: list[str]) -> tuple[list[str], list[str]]:
    """Take out "december 12", "the 5th", "the twenty first": numbers that are days of the
    month, so that they are not mistaken for an hour."""
    dates: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in _MONTHS:
            dates.append(w)
            day = _ordinal(nxt) or (int(nxt) if nxt.isdigit() and int(nxt) <= 31 else None)
            if day:
                dates.append(str(day))
                i += 1
        elif w == "twenty" and _ordinal(nxt):  # "the twenty first"
            dates.append(f"{20 + (_ordinal(nxt) or 0)}")
            i += 1
        elif _ordinal(w) and (not rest or rest[-1] in ("the", "on")):
            dates.append(str(_ordinal(w)))
        else:
            rest.append(w)
        i += 1
    return dates, rest


def _day_of_month(day: int, now: datetime) -> date | None:
    """ "The fifth": the next date with that day of the month."""
    for months_ahead in range(3):
        month = (now.month - 1 + months_ahead) % 12 + 1
        year = now.year + (now.month - 1 + months_ahead) // 12
        with contextlib.suppress(ValueError):
            candidate = date(year, month, day)
            if candidate >= now.date():
                return candidate
    return None


def _find_time(words: list[str], ampm: str | None) -> tuple[int | None, int, str | None]:
    for i, w in enumerate(words):
        hour: int | None = None
        minute = 0
        if (w.isdigit() and 1 <= int(w) <= 12) or (w.isdigit() and len(w) in (3, 4)):
            n = int(w)
            hour, minute = (n // 100, n % 100) if n > 24 else (n, 0)
        elif w.endswith(("am", "pm")) and w[:-2].isdigit():
            hour, ampm = int(w[:-2]), w[-2:]
        elif w in _UNITS or w in _TEENS:
            n = _UNITS.get(w, _TEENS.get(w))
            if n is None or not 1 <= n <= 12:
                continue
            hour = n
            nxt = words[i + 1 : i + 3]
            if nxt and (nxt[0] in _TENS or nxt[0] in _TEENS or nxt[0] == "oh"):
                minute = int("".join(_spoken_groups(nxt)) or 0) % 60
        else:
            continue
        follow = words[i + 1 : i + 4]
        if "pm" in follow or "p" in follow:
            ampm = "pm"
        elif "am" in follow or ("a" in follow and "m" in follow):
            ampm = "am"
        if hour is not None and 0 <= hour <= 23 and 0 <= minute <= 59:
            return hour, minute, ampm
    return None, 0, ampm


def _parse_day(phrase: str, now: datetime) -> date | None:
    if phrase in ("today", "now", "asap", "soon"):
        return now.date()
    if phrase.isdigit():  # a bare day of the month, from _split_dates
        return _day_of_month(int(phrase), now)
    settings = {
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    parsed = dateparser.parse(phrase, languages=["en"], settings=settings)
    if parsed is None:  # stray words around the date ("at round two"): find it inside
        found = search_dates(phrase, languages=["en"], settings=settings)
        parsed = found[0][1] if found else None
    if parsed is None:
        return None
    return parsed.date() if parsed.date() >= now.date() else None


def spoken_digits(text: str) -> str:
    """Digits said one by one or in groups: 'five five five, oh one two three' -> '5550123'."""
    out = []
    # A clock time ("call after 2:30") is no part of a number said digit by digit.
    for tok in words(_CLOCK_TIME.sub(" ", text)):
        if tok in _NUMBER_WORDS:
            out.extend(_spoken_groups([tok]))
        elif tok.isdigit():
            out.append(tok)
    return "".join(out)
