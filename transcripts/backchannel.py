"""Was the caller's speech over the agent a real interruption? "Uh-huh" and "okay" are the
caller listening, and the agent's own voice coming back down the line is not the caller
at all. Both are only known once transcribed, so the agent stops at once (a caller who
does mean to interrupt must not be talked over) and picks up where it was cut off when
the words turn out to be one of these."""

from __future__ import annotations

import re
from typing import Literal

from transcripts.words import words

_BACKCHANNEL_WORDS = {
    "uh",
    "huh",
    "uhhuh",
    "mm",
    "mhm",
    "mmhmm",
    "hmm",
    "hm",
    "okay",
    "ok",
    "yeah",
    "yep",
    "yes",
    "right",
    "sure",
    "alright",
    "all",
    "got",
    "it",
    "i",
    "see",
    "good",
}


# How Whisper writes listening noises: "Oh." for "uh-huh", "Mm-on." for "mm-hmm" (both
# read with the hyphen dropped, see _one_noise).
_NOISE = re.compile(r"^(u+h*|a+h+|o+h+|h*m+|m+[a-z]{0,4}|u+h+h?u+h+)$")
# A hyphen inside a word: "uh-huh", "mm-hmm", but not the dash in "okay - right".
_INNER_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")


def _one_noise(text: str) -> str:
    """A hyphenated noise is one noise ("uh-huh" -> "uhhuh"): the word count that tells
    listening from talking must not count it twice."""
    return _INNER_HYPHEN.sub("", text)


def is_backchannel(text: str) -> bool:
    """At most three words, all of them listening noises: "Uh-huh.", "Okay, got it."."""
    heard = words(_one_noise(text))
    return 0 < len(heard) <= 3 and all(w in _BACKCHANNEL_WORDS or _NOISE.match(w) for w in heard)


def is_echo(text: str, agent_text: str) -> bool:
    """Most of what was heard is a run of the agent's own words, in order."""
    heard, said = words(text), words(agent_text)
    if len(heard) < 3 or not said:
        return False
    # Longest common run of words (echo is the agent's speech, so it comes in order).
    best, previous = 0, [0] * (len(said) + 1)
    for h in heard:
        current = [0] * (len(said) + 1)
        for j, s in enumerate(said, start=1):
            if h == s:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best >= 0.7 * len(heard)


def carries_on(
    text: str, agent_text: str, unheard: list[str]
) -> Literal["echo", "backchannel"] | None:
    """Why the agent should say the rest of what a barge-in cut off instead of answering:
    the words were its own echo, or the caller listening ("uh-huh" while no question was
    left unsaid: "yes" over a question still playing is its answer). None: a real turn."""
    if is_echo(text, agent_text):
        return "echo"
    cut = unheard[0] if unheard else ""
    if cut and not cut.rstrip().endswith("?") and is_backchannel(text):
        return "backchannel"
    return None
