"""Does the receptionist store the right name, address and time when callers have hard
names and street names, on phone-line audio, and how many extra questions does it ask?

    python bench/understood.py --set tuning [--calls N] [--no-vocabulary] [--json out.json]
    python bench/understood.py --set heldout      # never used for tuning: aggregates only

Each call of bench/understood_sets.py runs in this process with the project's own parts:
`routing.local.LocalPolicy` with `routing.tools.ReceptionTools` on a fresh SQLite database
(migrated and seeded with the demo business by `storage.db.upgrade`), and the bundled
tiny.en `transcripts.engine.WhisperTranscriber` with its default settings. A caller turn is
the caller's reply spoken by espeak-ng in the call's voice and rate, 8 kHz, across the
call's phone line (bench/phoneline.py), `phone_to_whisper`, `transcribe(audio,
prompt=vocabulary)`, and `policy.respond(heard.text, heard)`; the caller then reads the
agent's words and answers (the rules below). No VAD or endpointing: each turn is the whole
reply with line noise around it.

The vocabulary is the business's: its name, services, towns and dispatcher, plus a street
list (the set's streets among the area's other streets, shuffled), as the service builds
its Whisper prompt. `--no-vocabulary`: no prompt and no street list.

Scoring reads the booking stored for the call: name right = first and last name equal,
case aside; address right = same house number and street name (suffixes normalised: St =
Street); time right = the visit starts at the wanted weekday and hour. Extra questions =
the agent's questions beyond one ask per field and one read-back: checks of a word ("Is
that Patel, P-A-T-E-L?"), spelling requests, "what should I change", a field asked for
again (an offer of other times counts as asking for the time again), a second read-back.
Target: all three right in >= 90% of calls, <= 1 extra question per call on average.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import inspect
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.understood_sets import (  # noqa: E402
    LOCAL_STREETS,
    NOW,
    SAY,
    SETS,
    SUFFIXES,
    WEEKDAYS,
    BookingCall,
    phone_line,
)
from media.resample import PHONE_RATE  # noqa: E402

MAX_CALLER_TURNS = 14
LEAD_S, TAIL_S = 0.3, 0.6  # line noise around each reply, as an endpointer cuts a turn
PEAK_DBFS = -3.0
LINE_NUMBER = "+15550100200"
CALLER_NUMBER = "+15555550123"
FIELDS = ("name", "address", "time")

# ---- words ---------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def norm_words(text: str) -> list[str]:
    """Lowercase words, street suffixes spelled out ("Rd." -> "road")."""
    return [SUFFIXES.get(w, w) for w in _WORD.findall(text.lower())]


def _contains(said: list[str], wanted: list[str]) -> bool:
    n = len(wanted)
    return n > 0 and any(said[i : i + n] == wanted for i in range(len(said) - n + 1))


_ONES = "zero one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _two(n: int) -> str:
    if n < 10:
        return _ONES[n]
    if n < 20:
        return _TEENS[n - 10]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


def house_number_words(n: int) -> str:
    """A house number as people say it: 57 "fifty seven", 812 "eight twelve", 305 "three oh
    five", 1420 "fourteen twenty", 1907 "nineteen oh seven", 2000 "two thousand"."""
    if n < 100:
        return _two(n)
    if n < 1000:
        head, rest = divmod(n, 100)
        tail = "hundred" if rest == 0 else ("oh " + _ONES[rest] if rest < 10 else _two(rest))
        return f"{_ONES[head]} {tail}"
    if n < 10000:
        head, rest = divmod(n, 100)
        if head % 10 == 0 and rest == 0:
            return f"{_ONES[head // 10]} thousand"
        tail = "hundred" if rest == 0 else ("oh " + _ONES[rest] if rest < 10 else _two(rest))
        return f"{_two(head)} {tail}"
    return " ".join(_ONES[int(d)] for d in str(n))


def spell(word: str) -> str:
    """ "Patel" -> "P A T E L": how the caller spells (letters apart, spaces between)."""
    return " ".join(c.upper() for c in word if c.isalpha())


_SPACED_LETTERS = re.compile(r"\b[A-Z](?: [A-Z]\b)+")


def to_speech(text: str, call: BookingCall) -> str:
    """What espeak-ng is given for a caller's text: the house number in words, hard words
    respelled as the caller pronounces them, spelled letters one by one ("P, A, T")."""
    text = _SPACED_LETTERS.sub(lambda m: m.group(0).replace(" ", ", "), text)
    text = re.sub(rf"\b{call.number}\b", house_number_words(call.number), text)
    for word, said in SAY.items():
        text = re.sub(rf"\b{re.escape(word)}\b", said, text)
    return text


# ---- reading the agent ---------------------------------------------------------------------

_SPELLING_HYPHENS = re.compile(r"\b[A-Za-z](?:-[A-Za-z]\b)+")
_SPELLING_SPACED = re.compile(r"\b[A-Z](?:[ ,]+[A-Z]\b){2,}")
_KEYPAD = re.compile(r"\bkey(?:pad| it in| in)\b", re.I)
_TIME = re.compile(
    r"\b(today|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
    r"(?:,?\s+(january|february|march|april|may|june|july|august|september|october|"
    r"november|december)\s+(\d{1,2}))?"
    r"[^.?!]*?\bat\s+(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s*m\b",
    re.I,
)
_MONTHS = (
    "january february march april may june july august september october november december"
).split()


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def without_keypad(text: str) -> str:
    """The agent's words minus any sentence about the keypad: this caller speaks."""
    return " ".join(s for s in sentences(text) if not _KEYPAD.search(s))


def spelling_in(text: str) -> str | None:
    """Letters the agent spelled ("P-A-T-E-L", "P, A, T, E, L") as one word: "PATEL"."""
    m = _SPELLING_HYPHENS.search(text) or _SPELLING_SPACED.search(text)
    return re.sub(r"[^A-Za-z]", "", m.group(0)).upper() if m else None


def classify(agent_text: str) -> str:
    """What the agent's turn asks for, from its words: its last question decides."""
    text = without_keypad(agent_text)
    low = text.lower()
    if not low:
        return "silent"
    if re.search(r"\bgood ?bye\b", low) and "?" not in low.rsplit("bye", 1)[-1]:
        return "goodbye"
    if "read that back" in low or ("is that correct" in low and _TIME.search(text)):
        return "readback"
    asked = [s for s in sentences(text) if s.endswith("?")]
    q = asked[-1] if asked else text
    low = q.lower()
    if "what should i change" in low or re.search(r"\bchange\b.*\bname\b.*\baddress\b", low):
        return "change"
    if spelling_in(q) and re.search(r"\b(is|was|did)\b", low):
        return "check"
    if re.search(r"\bspell\b", low):
        return "spell"
    if re.search(r"\bis (?:that|it) \d+\b", low):
        return "check"
    if "text you" in low:
        return "sms"
    if "anything else" in low:
        return "anything_else"
    if "i can offer" in low or "would that work" in low or "would either" in low:
        return "offer"
    if re.search(r"when would you like|what day|what time|day and time|which day", low):
        return "ask_time"
    if re.search(r"\baddress\b|street number|which street|what street", low):
        return "ask_address"
    if re.search(r"best (?:one|number) to reach", low) or (
        "is that right" in low and re.search(r"\d", text)
    ):
        return "callback"
    if "what number" in low:
        return "callback_number"
    if "best time to call" in low:
        return "best_time"
    if re.search(r"\bname\b", low):
        return "ask_name"
    if re.search(r"help you|help with|can i do for you|how can i help", low):
        return "greeting"
    return "unknown"


def times_in(text: str, now: datetime = NOW) -> list[datetime]:
    """The visit times the agent names ("tomorrow at 9 AM", "Thursday, December 3 at 2 PM")."""
    found = []
    for m in _TIME.finditer(text):
        day_word, month, mday, hour, minute, ampm = m.groups()
        day_word = day_word.lower()
        day: date
        if month and mday:
            year = now.year + (1 if _MONTHS.index(month.lower()) + 1 < now.month else 0)
            day = date(year, _MONTHS.index(month.lower()) + 1, int(mday))
        elif day_word == "today":
            day = now.date()
        elif day_word == "tomorrow":
            day = now.date() + timedelta(days=1)
        else:
            ahead = (WEEKDAYS.index(day_word.capitalize()) - now.weekday()) % 7 or 7
            day = now.date() + timedelta(days=ahead)
        h = int(hour) % 12 + (12 if ampm.lower() == "p" else 0)
        found.append(datetime(day.year, day.month, day.day, h, int(minute or 0), tzinfo=now.tzinfo))
    return found


def readback_fields(agent_text: str, call: BookingCall, now: datetime = NOW) -> dict[str, bool]:
    """Which of the caller's details a read-back has right."""
    said = norm_words(agent_text)
    street = norm_words(f"{call.number} {call.street_full}")
    return {
        "name": _contains(said, norm_words(call.name)),
        "address": _contains(said, street),
        "time": call.wanted.at(now) in times_in(agent_text, now),
    }


# ---- the caller ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    text: str
    hang_up: bool = False  # the caller says this and puts the phone down


def _style(call: BookingCall, what: str, n: int) -> int:
    return zlib.crc32(f"{call.id}/{what}".encode()) % n


def name_answer(call: BookingCall) -> str:
    forms = ("My name is {}.", "It's {}.", "{}.", "This is {}.")
    return forms[_style(call, "name", len(forms))].format(call.name)


def address_answer(call: BookingCall) -> str:
    forms = ("It's {}.", "{}.", "The address is {}.", "I'm at {}.")
    return forms[_style(call, "address", len(forms))].format(call.address)


def time_answer(call: BookingCall) -> str:
    phrase = call.wanted.phrase
    forms = ("{}.", "{}, please.", "How about {}?")
    form = forms[_style(call, "time", len(forms))]
    text = form.format(phrase)
    return text[0].upper() + text[1:]


def correction(call: BookingCall, wrong: str) -> str:
    """A wrong field's true value, as the caller states it."""
    if wrong == "name":
        return f"the name is {call.name}, {spell(call.last)}."
    if wrong == "address":
        return f"the address is {call.address}."
    return f"I said {call.wanted.phrase}."


def _candidates(call: BookingCall, question: str) -> list[str]:
    """The caller's words the agent may be asking about, narrowed by what it names."""
    low = question.lower()
    street = [*call.street.split(), call.street] if " " in call.street else [call.street]
    if re.search(r"\b(street|address|road|avenue|drive|lane|court|way|boulevard)\b", low):
        return street
    if "first name" in low:
        return [call.first]
    if re.search(r"\b(last name|surname|family name)\b", low):
        return [call.last]
    if re.search(r"\bname\b", low):
        return [call.last, call.first]
    return [call.last, call.first, *street]


def _closest(word: str, letters: str, options: list[str]) -> str:
    def score(option: str) -> float:
        flat = re.sub(r"[^a-z]", "", option.lower())
        return max(
            difflib.SequenceMatcher(None, word.lower(), option.lower()).ratio(),
            difflib.SequenceMatcher(None, letters.lower(), flat).ratio(),
        )

    return max(options, key=score)


def check_answer(call: BookingCall, question: str) -> str:
    """ "Is that Patel, P-A-T-E-L?": yes if word and spelling are the caller's, else the
    right word spelled."""
    text = without_keypad(question)
    number = re.search(r"\bis (?:that|it) (\d+)\b", text, re.I)
    letters = spelling_in(text)
    if number and not letters:
        said = int(number.group(1))
        return "Yes." if said == call.number else f"No, it's {call.number}."
    letters = letters or ""
    head = _SPELLING_HYPHENS.split(text)[0] if _SPELLING_HYPHENS.search(text) else text
    head = _SPELLING_SPACED.split(head)[0]
    m = re.search(r"\b(?:is|was|did)\b(?:\s+(?:that|it|you say|your \w+(?: name)?))?\s+(.*)$",
                  head, re.I)  # fmt: skip
    checked = (m.group(1) if m else head).strip(" ,.:?")
    checked = re.sub(r"\s*\bspelled\b\s*$", "", checked, flags=re.I).strip(" ,.:")
    options = _candidates(call, text)
    truth = _closest(checked or letters, letters, options)
    flat = re.sub(r"[^A-Za-z]", "", truth).upper()
    if letters == flat and re.sub(r"[^A-Za-z]", "", checked).upper().endswith(flat):
        return "Yes."
    return f"No, it's {truth}, {spell(truth)}."


def spell_answer(call: BookingCall, question: str) -> str:
    """ "Could you spell your last name?": the word(s) asked about, then the letters."""
    text = without_keypad(question)
    options = _candidates(call, text)
    low = text.lower()
    if re.search(r"\b(street|address|road|avenue|drive|lane|court|way|boulevard)\b", low):
        target = [call.street]
    elif len(options) <= 2 and re.search(r"\bname\b", low):
        target = [options[0]]
    else:  # "How do you spell Pattel?": the word it resembles
        asked = [w for w in re.findall(r"\b[A-Z][a-z'-]+\b", text) if w.lower() not in _ASKING]
        target = [_closest(asked[-1], "", options)] if asked else [call.last]
    word = target[0]
    parts = ", ".join(spell(w) for w in word.split())
    return f"Sure, {word}, {parts}."


_ASKING = {"could", "can", "how", "would", "sorry", "please", "what", "i", "and", "thanks"}


BOOK_AGAIN = (
    "I'd like to book a visit, please.",
    "I need a technician to come out.",
    "I want to schedule an appointment.",
)


@dataclass
class Caller:
    """A caller who wants `call` booked, answering from the agent's words alone."""

    call: BookingCall
    now: datetime = NOW
    last: str | None = None  # the last answer given
    repeated: bool = False  # the fallback already repeated it
    wrong: str | None = None  # first wrong field of the latest read-back
    told_problem: bool = False
    booked_heard: bool = False  # "You're all set" was said
    menus: int = 0  # times the problem was asked for again

    def answer(self, agent_text: str) -> Reply:
        kind = classify(agent_text)
        reply = self._answer(kind, agent_text)
        if reply is None:  # not understood: say it again once, then give up
            if self.last is not None and not self.repeated:
                self.repeated = True
                return Reply(self.last)
            return Reply("Sorry, I have to go. Goodbye.", hang_up=True)
        self.repeated = False
        if not reply.hang_up:
            self.last = reply.text
        return reply

    def _answer(self, kind: str, agent_text: str) -> Reply | None:
        call = self.call
        if "all set" in agent_text.lower():
            self.booked_heard = True
        match kind:
            case "goodbye":
                return Reply("Goodbye.", hang_up=True)
            case "greeting":
                if self.booked_heard:
                    return Reply("No, that's all. Thank you, goodbye.", hang_up=True)
                if self.told_problem:  # not understood: the menu's words, put another way
                    self.menus += 1
                    return Reply(BOOK_AGAIN[(self.menus - 1) % len(BOOK_AGAIN)])
                self.told_problem = True
                return Reply(call.problem)
            case "ask_name":
                return Reply(name_answer(call))
            case "ask_address":
                return Reply(address_answer(call))
            case "ask_time":
                return Reply(time_answer(call))
            case "offer":
                offered = times_in(agent_text, self.now)
                want = call.wanted.at(self.now)
                if want in offered:
                    at = offered.index(want)
                    return Reply("Yes, the first one." if at == 0 else "The second one, please.")
                return Reply(f"No, {correction(call, 'time')}")
            case "readback":
                right = readback_fields(agent_text, call, self.now)
                self.wrong = next((f for f in FIELDS if not right[f]), None)
                if self.wrong is None:
                    return Reply("Yes, that's right.")
                return Reply(f"No, {correction(call, self.wrong)}")
            case "check":
                return Reply(check_answer(call, agent_text))
            case "spell":
                return Reply(spell_answer(call, agent_text))
            case "change":
                if self.wrong is None:
                    return Reply("Nothing, it's all correct.")
                text = correction(call, self.wrong)
                return Reply(text[0].upper() + text[1:])
            case "sms":
                return Reply("Yes, please.")
            case "anything_else":
                return Reply("No, that's all. Thank you, goodbye.", hang_up=True)
            case "callback":
                return Reply("Yes, this number is fine.")
            case "callback_number":
                return Reply("It's 555 555 0123.")
            case "best_time":
                return Reply("Any time today.")
        return None


# ---- extra questions -----------------------------------------------------------------------

_FIELD_OF = {"ask_name": "name", "ask_address": "address", "ask_time": "time", "offer": "time"}


@dataclass
class Questions:
    """The agent's questions, and which of them were extra."""

    asked: dict[str, int] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)

    def add(self, kind: str) -> bool:
        key = _FIELD_OF.get(kind, kind)
        seen = self.asked.get(key, 0)
        self.asked[key] = seen + 1
        if kind in ("check", "spell", "change") or (
            (key in FIELDS or kind == "readback") and seen > 0
        ):
            self.extra.append(kind)
            return True
        return False


# ---- scoring -------------------------------------------------------------------------------


def name_right(stored: str | None, call: BookingCall) -> bool:
    return stored is not None and " ".join(stored.lower().split()).strip(" .,") == (
        call.name.lower()
    )


def address_right(stored: str | None, call: BookingCall) -> bool:
    """Same house number, then the street's name and suffix (abbreviations spelled out);
    anything after them (a town, a unit) is not held against it."""
    if not stored:
        return False
    said = norm_words(stored)
    want = norm_words(call.address)
    return said[: len(want)] == want


def time_right(stored: datetime | None, call: BookingCall, now: datetime = NOW) -> bool:
    return stored is not None and stored.astimezone(now.tzinfo) == call.wanted.at(now)


def score(stored: dict[str, Any] | None, call: BookingCall, now: datetime = NOW) -> dict[str, bool]:
    """stored: the call's booking (name, address, scheduled_for aware) or None."""
    if stored is None:
        return dict.fromkeys(FIELDS, False)
    return {
        "name": name_right(stored.get("name"), call),
        "address": address_right(stored.get("address"), call),
        "time": time_right(stored.get("scheduled_for"), call, now),
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results) or 1
    return {
        "calls": len(results),
        "booked_pct": 100 * sum(r["booked"] for r in results) / n,
        "all_right_pct": 100 * sum(all(r["right"].values()) for r in results) / n,
        **{f"{f}_right_pct": 100 * sum(r["right"][f] for r in results) / n for f in FIELDS},
        "extra_questions_mean": sum(r["extra_questions"] for r in results) / n,
        "caller_turns_mean": sum(r["caller_turns"] for r in results) / n,
        "seconds_per_call_mean": sum(r["seconds"] for r in results) / n,
        **{
            f"{f}_heard_first_pct": 100
            * sum(bool(r.get("first_heard", {}).get(f)) for r in results)
            / max(1, sum(f in r.get("first_heard", {}) for r in results))
            for f in ("name", "address")
        },
        "unbooked_last_asked": dict(
            Counter(r["stuck_at"] for r in results if r.get("stuck_at")).most_common()
        ),
    }


def field_errors(results: list[dict[str, Any]]) -> list[str]:
    """ "t06 address: stored '640 Skokie Avenue', truth '640 Schuylkill Avenue'"."""
    out = []
    for r in results:
        if not r["booked"]:
            out.append(f"{r['id']}: nothing booked ({r['outcome']})")
            continue
        for f in FIELDS:
            if not r["right"][f]:
                out.append(f"{r['id']} {f}: stored {r['stored'][f]!r}, truth {r['truth'][f]!r}")
    return out


# ---- audio ---------------------------------------------------------------------------------


def synthesize(text: str, voice: str, wpm: int, gap: int = 0) -> np.ndarray:
    """espeak-ng speaking `text` (`gap`: pause between words, in 10 ms): float 8 kHz, peak
    at PEAK_DBFS, its own silences cut."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-g", str(gap), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        raw = w.readframes(2**31 - 1)  # a streaming header: read what is there
    audio = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    if len(voiced):
        audio = audio[voiced[0] : voiced[-1] + 1]
    audio = np.asarray(soxr.resample(audio, rate, PHONE_RATE), dtype=np.float64)
    return audio * (10 ** (PEAK_DBFS / 20) / max(float(np.max(np.abs(audio))), 1e-9))


# ---- the business --------------------------------------------------------------------------


def street_list(calls: tuple[BookingCall, ...], others: int, seed: int = 7) -> list[str]:
    """The business's streets: the set's, among `others` other streets of the area."""
    streets = list(dict.fromkeys(c.street_full for c in calls)) + list(LOCAL_STREETS[:others])
    random.Random(seed).shuffle(streets)
    return streets


def business_prompt(profile: Any, streets: list[str]) -> str:
    """The Whisper prompt the service would build for this business with these streets."""
    try:  # the service's own builder, where it has one
        from voice_agent.twilio.media_stream import business_vocabulary  # type: ignore

        if hasattr(profile, "vocabulary"):
            return str(business_vocabulary(dataclasses.replace(profile, vocabulary=tuple(streets))))
    except ImportError:
        pass
    from transcripts.vocabulary import vocabulary_prompt

    return vocabulary_prompt(
        profile.name,
        services=[s.name for s in profile.services],
        places=[a for a in profile.service_area if not a.isdigit()],
        people=[d.name for d in profile.dispatchers],
        extra=streets,
    )


class Business:
    """A migrated, seeded SQLite database, copied fresh for every call."""

    def __init__(self, workdir: Path) -> None:
        from storage.db import make_engine, upgrade

        self.workdir = workdir
        self.template = workdir / "template.db"
        engine = make_engine(f"sqlite:///{self.template}")
        upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()

    def fresh(self, name: str) -> Any:
        from storage.db import make_engine

        path = self.workdir / f"{name}.db"
        shutil.copyfile(self.template, path)
        return make_engine(f"sqlite:///{path}")


def stored_booking(engine: Any, call_sid: str) -> dict[str, Any] | None:
    from sqlalchemy import select

    from storage.db import utc
    from storage.models import Booking, Call

    with engine.connect() as conn:
        row = conn.execute(
            select(Booking.name, Booking.address, Booking.scheduled_for)
            .join(Call, Booking.call_id == Call.id)
            .where(Call.call_sid == call_sid)
            .order_by(Booking.id.desc())
        ).first()
    if row is None:
        return None
    return {"name": row.name, "address": row.address, "scheduled_for": utc(row.scheduled_for)}


# ---- one call ------------------------------------------------------------------------------


async def _spoken(parts: AsyncIterator[Any]) -> tuple[str, bool]:
    from routing.acts import EndCall, Speak, Transfer

    said, ended = [], False
    async for part in parts:
        if isinstance(part, Speak):
            said.append(part.text)
        elif isinstance(part, EndCall | Transfer):
            ended = True
    return " ".join(said), ended


class Ear:
    """The transcriber as the service calls it: vocabulary prompt, and what the agent
    asked for where the engine takes it (`expect`)."""

    def __init__(self, engine: Any, prompt: str | None) -> None:
        self.engine, self.prompt = engine, prompt
        self._expect = None
        if "expect" in inspect.signature(engine.transcribe).parameters:
            try:
                from transcripts.expect import expectation_after  # type: ignore

                self._expect = expectation_after
            except ImportError:
                pass

    def hear(self, audio: np.ndarray, agent_text: str) -> Any:
        if self._expect is not None:
            expect = self._expect(agent_text)
            return self.engine.transcribe(audio, prompt=self.prompt, expect=expect)
        return self.engine.transcribe(audio, prompt=self.prompt)


async def run_call(
    call: BookingCall, business: Business, ear: Ear, vocabulary: tuple[str, ...] | None
) -> dict[str, Any]:
    from media.resample import phone_to_whisper
    from routing.local import LocalPolicy
    from routing.tools import ReceptionTools
    from storage.businesses import BusinessStore
    from storage.calls import CallStore
    from storage.reception import ReceptionStore

    started = time.perf_counter()
    engine = business.fresh(call.id)
    profile = BusinessStore(engine).by_line(LINE_NUMBER)
    assert profile is not None
    if hasattr(profile, "vocabulary"):  # the streets the business lists (none: no vocabulary)
        profile = dataclasses.replace(profile, vocabulary=vocabulary or ())
    call_sid = f"CAunderstood{call.id}"
    CallStore(engine).open_call(call_sid, profile.id, CALLER_NUMBER, profile.line)
    tools = ReceptionTools(
        profile, call_sid, CALLER_NUMBER, ReceptionStore(engine), clock=lambda: NOW
    )
    policy = LocalPolicy(profile, tools)
    caller = Caller(call)
    line = phone_line(call)
    questions = Questions()
    turns: list[dict[str, Any]] = []
    caller_lines: list[str] = []
    first_heard: dict[str, bool] = {}  # the field's first answer came out of Whisper whole

    agent, ended = await _spoken(policy.greet())
    questions.add(classify(agent))
    transcribe_ms: list[float] = []
    while not ended and len(caller_lines) < MAX_CALLER_TURNS:
        reply = caller.answer(agent)
        caller_lines.append(reply.text)
        if reply.hang_up:  # said, and the phone goes down: nobody answers it
            turns.append({"agent": agent, "kind": classify(agent), "caller": reply.text})
            break
        speech = to_speech(reply.text, call)
        pcm = synthesize(speech, call.voice, call.wpm, call.gap)
        lead, tail = np.zeros(round(LEAD_S * PHONE_RATE)), np.zeros(round(TAIL_S * PHONE_RATE))
        heard_pcm = line.hear(np.concatenate([lead, pcm, tail]))
        t0 = time.perf_counter()
        heard = ear.hear(phone_to_whisper(heard_pcm), agent)
        transcribe_ms.append((time.perf_counter() - t0) * 1000)
        turn: dict[str, Any] = {
            "agent": agent,
            "kind": classify(agent),
            "caller": reply.text,
            "heard": heard.text,
            "unsure": sorted(heard.unsure()) if hasattr(heard, "unsure") else [],
        }
        turns.append(turn)
        field_asked = {"ask_name": "name", "ask_address": "address"}.get(turn["kind"])
        if field_asked and field_asked not in first_heard:  # the first answer, as heard
            truth = call.name if field_asked == "name" else call.address
            first_heard[field_asked] = _contains(norm_words(heard.text), norm_words(truth))
        if not heard.text:  # nothing heard: no answer; the caller says it again
            turn["extra"] = False
            continue
        agent, ended = await _spoken(policy.respond(heard.text, heard))
        turn["extra"] = questions.add(classify(agent))
        turn["next"] = agent
    outcome = await policy.finish_call(caller_lines)
    stored = stored_booking(engine, call_sid)
    engine.dispose()
    right = score(stored, call)
    return {
        "id": call.id,
        "easy": call.easy,
        "voice": call.voice,
        "wpm": call.wpm,
        "line": call.line,
        "booked": stored is not None,
        "outcome": outcome,
        "right": right,
        "stored": {
            "name": stored["name"] if stored else None,
            "address": stored["address"] if stored else None,
            "time": stored["scheduled_for"].astimezone(NOW.tzinfo).isoformat() if stored else None,
        },
        "truth": {
            "name": call.name,
            "address": call.address,
            "time": call.wanted.at().isoformat(),
        },
        "caller_turns": len(caller_lines),
        "first_heard": first_heard,
        "stuck_at": None if stored else classify(agent),  # the last thing asked
        "extra_questions": len(questions.extra),
        "extra_kinds": questions.extra,
        "street_in_prompt": bool(vocabulary) and call.street_full in (vocabulary or ()),
        "seconds": round(time.perf_counter() - started, 2),
        "transcribe_ms_mean": round(float(np.mean(transcribe_ms)), 1) if transcribe_ms else None,
        "turns": turns,
    }


# ---- the run -------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from voice_agent.app import build_transcriber
    from voice_agent.settings import Settings

    calls = SETS[args.set][: args.calls] if args.calls else SETS[args.set]
    workdir = Path(tempfile.mkdtemp(prefix="understood-"))
    try:
        business = Business(workdir)
        from storage.businesses import BusinessStore
        from storage.db import make_engine

        template = make_engine(f"sqlite:///{business.template}")
        profile = BusinessStore(template).by_line(LINE_NUMBER)
        template.dispose()
        streets = [] if args.no_vocabulary else street_list(SETS[args.set], args.streets)
        prompt = None if args.no_vocabulary else business_prompt(profile, streets)
        in_prompt = [s for s in streets if s in (prompt or "")]
        listed = tuple(s for s in streets)
        set_streets = {c.street_full for c in calls}
        print(
            f"set: {args.set} ({len(calls)} calls"
            f"{', NEVER USED FOR TUNING' if args.set == 'heldout' else ''}); vocabulary: "
            + (
                "none"
                if prompt is None
                else f"{len(prompt)} chars, {len(set_streets & set(in_prompt))}/"
                f"{len(set_streets)} of the set's streets in it"
            ),
            flush=True,
        )
        # The recognizer the service would build (STT_ENGINE, STT_MODEL: bundled tiny.en).
        engine = build_transcriber(Settings())
        ear = Ear(engine, prompt)
        results = []
        for call in calls:
            result = await run_call(call, business, ear, listed or None)
            if prompt is not None:
                result["street_in_prompt"] = call.street_full in in_prompt
            results.append(result)
            if args.set == "tuning" or args.verbose:
                marks = "".join("NAT"[i] if result["right"][f] else "-" for i, f in
                                enumerate(FIELDS))  # fmt: skip
                print(
                    f"  {call.id} {'easy' if call.easy else 'hard'} {marks} "
                    f"booked={result['booked']} turns={result['caller_turns']} "
                    f"extra={result['extra_questions']} {result['extra_kinds']} "
                    f"{result['seconds']:.1f}s stored={result['stored']}",
                    flush=True,
                )
            else:
                print(f"  {call.id}: done in {result['seconds']:.1f}s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    totals = summarize(results)
    return {
        "set": args.set,
        "vocabulary": prompt,
        "streets": streets,
        "totals": totals,
        "field_errors": field_errors(results),
        "calls": results,
    }


def report(out: dict[str, Any]) -> None:
    t = out["totals"]
    print(
        f"\n{out['set']} set, {t['calls']} calls, "
        f"{'with' if out['vocabulary'] else 'without'} vocabulary:\n"
        f"  all three right: {t['all_right_pct']:.0f}% (target >= 90%)  "
        f"name {t['name_right_pct']:.0f}%, address {t['address_right_pct']:.0f}%, "
        f"time {t['time_right_pct']:.0f}%, booked {t['booked_pct']:.0f}%\n"
        f"  extra questions per call: {t['extra_questions_mean']:.2f} (target <= 1)  "
        f"caller turns per call: {t['caller_turns_mean']:.1f}  "
        f"seconds per call: {t['seconds_per_call_mean']:.1f}"
    )
    print(
        f"  Whisper heard the whole name at its first answer in {t['name_heard_first_pct']:.0f}% "
        f"of calls, the whole address in {t['address_heard_first_pct']:.0f}%"
    )
    if t["unbooked_last_asked"]:
        print(f"  not booked, what the agent asked last: {t['unbooked_last_asked']}")
    if out["field_errors"]:
        print("  field errors (stored vs truth):")
        for line in out["field_errors"]:
            print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="tuning")
    parser.add_argument("--calls", type=int, default=0, help="only the first N calls")
    parser.add_argument("--no-vocabulary", action="store_true", help="no prompt, no streets")
    parser.add_argument("--streets", type=int, default=30, help="other streets listed (<= 30)")
    parser.add_argument("--json", type=Path, help="write every call's details here")
    parser.add_argument("--verbose", action="store_true", help="per-call lines for heldout too")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed: apt-get install espeak-ng")
    out = asyncio.run(run(args))
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
        print(f"details: {args.json}")


if __name__ == "__main__":
    main()
