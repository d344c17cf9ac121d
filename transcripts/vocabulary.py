"""The words a business's callers are likely to say, as a Whisper prompt.

Whisper reads a prompt as text said just before the audio: spellings in it become likelier
("Siobhan", "Quail Hollow Road", "Bluebird") without being forced, so speech that is not
about them comes out as before. Kept short: the model weighs a long prompt less, and every
token of it is decoded again on each turn."""

from __future__ import annotations

from collections.abc import Iterable

MAX_CHARS = 600  # ~150 tokens, of Whisper's 223 for a prompt


def vocabulary_prompt(
    business: str,
    services: Iterable[str] = (),
    places: Iterable[str] = (),
    people: Iterable[str] = (),
    extra: Iterable[str] = (),
) -> str:
    """One sentence-like line, most specific words first (they survive the length cap)."""
    seen: set[str] = set()
    terms: list[str] = []
    for term in (*extra, *places, *people, *services):
        term = " ".join(str(term).split())
        if term and not term.isdigit() and term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    line = f"{business}."
    for term in terms:
        if len(line) + len(term) + 2 > MAX_CHARS:
            break
        line += f" {term},"
    return line.rstrip(",") + ("." if terms else "")
