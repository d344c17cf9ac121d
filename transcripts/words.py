"""The words of a transcript: one rule for everything that reads what a caller said.

Lowercase; letters, digits and apostrophes make a word ("o'clock", "i'm", "422"); anything
else splits words, hyphens and dashes included, so Whisper's "5-5-5" is three words and
"uh-huh" two. A reader that needs more (a clock time, a house number written "4.22")
prepares the text before asking for its words."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())
