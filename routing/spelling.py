"""Letters and digits as people say them on the phone, both ways.

Heard: "P-A-T-E-L", "P A T E L", "P, A, T, E, L", "P as in Peter", "Papa Alpha..." -> PATEL.
Said: "Patel" -> "P-A-T-E-L"; "+15550100142" -> "5 5 5, 0 1 0, 0 1 4 2" (grouped as people
read a number back, so each group can be checked)."""

from __future__ import annotations

import re

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

_NATO = {
    "alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E",
    "foxtrot": "F", "golf": "G", "hotel": "H", "india": "I", "juliet": "J", "juliett": "J",
    "kilo": "K", "lima": "L", "mike": "M", "november": "N", "oscar": "O", "papa": "P",
    "quebec": "Q", "romeo": "R", "sierra": "S", "tango": "T", "uniform": "U", "victor": "V",
    "whiskey": "W", "whisky": "W", "xray": "X", "yankee": "Y", "zulu": "Z",
}  # fmt: skip
# Letter names as a recognizer may write them out.
_NAMES = {
    "ay": "A", "bee": "B", "cee": "C", "see": "C", "dee": "D", "ee": "E", "eff": "F",
    "gee": "G", "aitch": "H", "jay": "J", "kay": "K", "el": "L", "ell": "L", "em": "M",
    "en": "N", "pee": "P", "cue": "Q", "queue": "Q", "ar": "R", "are": "R", "ess": "S",
    "tee": "T", "vee": "V", "ex": "X", "why": "Y", "zee": "Z", "zed": "Z",
}  # fmt: skip
_TOKEN = re.compile(r"[A-Za-z']+")


def spell_out(word: str) -> str:
    """ "Patel" -> "P-A-T-E-L" (what a receptionist reads back)."""
    return "-".join(c.upper() for c in word if c.isalpha())


def spelled(text: str) -> str | None:
    """The word a caller spelled, as capital letters, or None when no spelling is in the
    text. A spelling is a run of at least two letters given one by one: single letters,
    "X as in Xavier", NATO words, or letter names written out ("pee", "ay")."""
    tokens = _TOKEN.findall(text.replace("-", " "))
    best: list[str] = []
    run: list[str] = []
    i = 0
    while i < len(tokens):
        tok, low = tokens[i], tokens[i].lower()
        letter = None
        if len(tok) == 1 and tok.isalpha():
            letter = tok.upper()
            # "P as in Peter": the letter, then skip "as in <word>"
            if i + 3 < len(tokens) + 1 and [t.lower() for t in tokens[i + 1 : i + 3]] == [
                "as",
                "in",
            ]:
                i += 3
        elif low in _NATO:
            letter = _NATO[low]
        elif low in _NAMES and run:  # only inside a spelling: "see" alone is a word
            letter = _NAMES[low]
        if letter is not None:
            run.append(letter)
        else:
            if len(run) > len(best):
                best = run
            run = []
        i += 1
    if len(run) > len(best):
        best = run
    # "I" and "a" are words: two letters must be written as a spelling to count as one.
    if len(best) < 2 or (len(best) == 2 and not re.search(r"\b[A-Za-z][-.,] ?[A-Za-z]\b", text)):
        return None
    return "".join(best)


def as_name(letters: str) -> str:
    """ "PATEL" -> "Patel"; "OBRIEN" stays as spelled but capitalised: "Obrien"."""
    return letters[:1].upper() + letters[1:].lower()


def say_digits(phone: str) -> str:
    """A US number in E.164 read back in groups: "+15550100142" -> "5 5 5, 0 1 0, 0 1 4 2"."""
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    groups = [digits[:3], digits[3:6], digits[6:]] if len(digits) == 10 else [digits]
    return ", ".join(" ".join(g) for g in groups if g)


def closest(word: str, known: list[str], max_ratio: float = 0.34) -> str | None:
    """The known word nearest to `word` by letters, if it is near enough: at most a third of
    its letters wrong ("Quale Hollow" -> "Quail Hollow"). Ties and far misses give None: a
    wrong snap is worse than an honest doubt."""
    if not word or not known:
        return None
    key = word.lower()
    lowered = [k.lower() for k in known]
    matches = process.extract(key, lowered, scorer=Levenshtein.normalized_distance, limit=2)
    if not matches:
        return None
    best_word, distance, index = matches[0]
    if distance > max_ratio:
        return None
    if len(matches) > 1 and matches[1][1] == distance and matches[1][0] != best_word:
        return None
    return known[index]
