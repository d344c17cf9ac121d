"""Word error rate with the normalisation transcripts need: case, punctuation, and numbers
(Whisper writes "29340" where the reference says "two nine three four zero")."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

import jiwer

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_NUMBERS = {w: str(i) for i, w in enumerate(_UNITS.split())}
_NUMBERS.update({w: str(10 * i) for i, w in enumerate(_TENS.split(), start=2)})
_NUMBERS["oh"] = "0"


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = [_NUMBERS.get(w, w) for w in text.split()]
    # Compare numbers digit by digit, however they were grouped.
    return " ".join(" ".join(w) if w.isdigit() else w for w in words)


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalize(reference), normalize(hypothesis) or "<empty>")


def heard_as(heard: str, said: str, ratio: float = 0.6) -> bool:
    """Whisper's words for what was said, with margin: close in spelling ("Jane's Carter" for
    "James Carter", "11:80 Birch Avenue") or sharing one of its longer words (a surname, a
    street, "furnace"). Unrelated words fail it."""
    h, s = normalize(heard), normalize(said)
    close = SequenceMatcher(None, h, s).ratio() >= ratio
    return close or any(w in h.split() for w in s.split() if len(w) >= 5)
