"""Names and addresses as heard, made right: the business's own street names win over a near
miss, a spelling replaces the word it spells, and a word the recognizer doubted is named so
the receptionist can check it."""

from __future__ import annotations

import re

from routing.spelling import as_name, closest, spelled
from transcripts.heard import Heard
from transcripts.words import words

SUFFIXES = (
    "street|st|avenue|ave|road|rd|drive|dr|lane|ln|boulevard|blvd|court|ct|way|place|pl|"
    "circle|terrace|parkway|pkwy|highway|hwy"
)
_ADDRESS = re.compile(rf"^(\d+)\s+(.+?)(?:\s+({SUFFIXES})\.?)?$", re.I)
_STREET_ENTRY = re.compile(rf"^(.+?)\s+({SUFFIXES})\.?$", re.I)


def streets_of(vocabulary: tuple[str, ...] | list[str]) -> list[str]:
    """The entries of a business's vocabulary that are street names ("Quail Hollow Road")."""
    return [v for v in vocabulary if _STREET_ENTRY.match(v.strip())]


def split_address(address: str) -> tuple[str, str, str] | None:
    """ "1180 Birch Avenue" -> ("1180", "Birch", "Avenue"); the suffix may be ""."""
    m = _ADDRESS.match(address.strip())
    if not m:
        return None
    return m.group(1), m.group(2), m.group(3) or ""


def known_street(address: str, streets: list[str]) -> tuple[str, bool]:
    """The address with its street replaced by the business's spelling of it when the heard
    one is a near miss ("1180 Burch Avenue" -> "1180 Birch Avenue"), and whether the street
    is one the business knows."""
    parts = split_address(address)
    if parts is None or not streets:
        return address, False
    number, name, _ = parts
    names = [_STREET_ENTRY.match(s.strip()).group(1) for s in streets]  # type: ignore[union-attr]
    hit = closest(name, names)
    if hit is None:
        return address, False
    street = streets[names.index(hit)]
    return f"{number} {street}", True


def doubted(value: str | None, heard: Heard) -> str | None:
    """The word of `value` the recognizer was least sure of, if any was unsure; the last
    such word (a surname, a street) first, since a first word is easier to get right."""
    if not value or heard.keyed:
        return None
    unsure = heard.unsure()
    for word in reversed(value.split()):
        if set(words(word)) & unsure and not word.isdigit():
            return word
    return None


def letters_in(text: str, heard: Heard) -> str | None:
    """The word a caller spelled in this turn. The letters-only reading of the audio is
    preferred; the free transcript's own spelling ("P-A-T-E-L") when there is none."""
    free = spelled(text)
    held = heard.letters if heard.letters and len(heard.letters) >= 2 else None
    if free and (len(free) >= 3 or (held and free in held)):
        # The free decoder wrote a spelling itself: the letters reading has the words
        # around it ("Sure, it's...") as letters too.
        return free
    return held or free


def respell(value: str, word: str, letters: str) -> str:
    """`value` with `word` replaced by the spelled one: ("Priya Patol", "Patol", "PATEL")."""
    parts = value.split()
    if word in parts:
        parts[len(parts) - 1 - parts[::-1].index(word)] = as_name(letters)
    else:
        parts[-1] = as_name(letters)
    return " ".join(parts)
