"""What a recognizer heard: the text, and how sure it was of each word.

A booking is only as good as its name and address, and a recognizer knows when it guessed:
a word's probability is the lowest of its tokens' (a name split into "Pri", "ya" is as
doubtful as its worst piece). Engines that give no probabilities leave `words` empty, and
then nothing is doubted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from transcripts.words import words as split_words

# What the agent's last question narrows the answer to: a spelling, or a number.
Expect = Literal["letters", "digits"]

# Below this a word is a guess worth checking with the caller. On the tuning turns (tiny.en,
# phone line) correct names and streets came out at 0.40-0.99, misheard ones at 0.05-0.45.
UNSURE_BELOW = 0.45


@dataclass(frozen=True)
class HeardWord:
    text: str
    probability: float


@dataclass(frozen=True)
class Heard:
    text: str
    words: tuple[HeardWord, ...] = ()
    keyed: bool = False  # typed on the keypad (DTMF), not spoken: nothing to doubt
    # The same audio read as letters only ("P-A-T-E-L"), when a spelling was asked for:
    # a recognizer held to letters hears them far better than one free to hear words.
    letters: str | None = None

    def __bool__(self) -> bool:
        return bool(self.text)

    def unsure(self, threshold: float = UNSURE_BELOW) -> frozenset[str]:
        """The words (as transcripts.words spells them) heard with less than `threshold`."""
        return frozenset(
            w for hw in self.words if hw.probability < threshold for w in split_words(hw.text)
        )


def heard_from_tokens(pieces: list[tuple[str, float]]) -> tuple[HeardWord, ...]:
    """Tokens (decoded text, probability) -> words: a token that starts with a space, or
    follows punctuation, starts a word; a word's probability is its weakest token's."""
    grouped: list[tuple[str, float]] = []
    for piece, p in pieces:
        if grouped and not piece.startswith(" ") and split_words(piece):
            text, q = grouped[-1]
            if split_words(text):
                grouped[-1] = (text + piece, min(q, p))
                continue
        grouped.append((piece, p))
    return tuple(HeardWord(t.strip(), round(p, 3)) for t, p in grouped if split_words(t))
