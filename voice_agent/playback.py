"""What the agent said and what the caller actually heard.

Twilio queues outbound audio and echoes a `mark` once everything queued before it has
played. A mark goes after every sentence, so on barge-in the transcript keeps the
sentences whose marks came back and flags the rest as not heard."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from storage.calls import SegmentRecord


@dataclass
class Utterance:
    id: int
    start_ms: int
    sentences: list[str] = field(default_factory=list)
    heard: list[bool] = field(default_factory=list)
    samples: int = 0
    interrupted: bool = False

    def segment(self) -> SegmentRecord:
        heard = [s for s, ok in zip(self.sentences, self.heard, strict=True) if ok]
        not_all_heard = self.interrupted or not all(self.heard)
        return SegmentRecord(
            speaker="agent",
            text=" ".join(self.sentences),
            start_ms=self.start_ms,
            end_ms=self.start_ms + self.samples // 8,
            interrupted=not_all_heard,
            heard_text=" ".join(heard) if not_all_heard else None,
        )


class Playback:
    def __init__(self) -> None:
        self.utterances: list[Utterance] = []
        self._pending: dict[str, tuple[Utterance, int | None]] = {}
        self._producing = 0  # utterances still being synthesized
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def speaking(self) -> bool:
        """Audio is being produced, or queued at Twilio and not yet heard."""
        return self._producing > 0 or bool(self._pending)

    def begin(self, start_ms: int) -> Utterance:
        utt = Utterance(id=len(self.utterances) + 1, start_ms=start_ms)
        self.utterances.append(utt)
        self._producing += 1
        self.idle.clear()
        return utt

    def queued(self, utt: Utterance, sentence: str, samples: int) -> str:
        """A sentence's audio was sent; returns the mark name to send after it."""
        index = len(utt.sentences)
        utt.sentences.append(sentence)
        utt.heard.append(False)
        utt.samples += samples
        name = f"u{utt.id}.s{index}"
        self._pending[name] = (utt, index)
        return name

    def end_mark(self, utt: Utterance) -> str:
        """A last mark after the whole answer ("u3.end"): its echo means all was played.
        Sentences stream in, so which one is last is only known after it was sent."""
        name = f"u{utt.id}.end"
        self._pending[name] = (utt, None)
        return name

    def finished(self, utt: Utterance) -> None:
        """No more sentences will be queued for this utterance."""
        self._producing -= 1
        self._update_idle()

    def on_mark(self, name: str) -> bool:
        entry = self._pending.pop(name, None)
        if entry is None:
            return False  # unknown, or cleared by a barge-in: not heard
        utt, index = entry
        if index is not None:
            utt.heard[index] = True
        self._update_idle()
        return True

    def unheard(self) -> list[str]:
        """Sentences sent and not yet played, in the order they were sent."""
        entries = [(u.id, i, u.sentences[i]) for u, i in self._pending.values() if i is not None]
        return [text for _id, _i, text in sorted(entries)]

    def interrupt(self) -> None:
        """The caller talked over the agent: whatever is still queued is never heard."""
        for utt, _ in self._pending.values():
            utt.interrupted = True
        self._pending.clear()
        self._update_idle()

    def _update_idle(self) -> None:
        if not self.speaking:
            self.idle.set()

    def segments(self) -> list[SegmentRecord]:
        return [u.segment() for u in self.utterances if u.sentences]
