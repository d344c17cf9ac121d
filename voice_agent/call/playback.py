"""What the agent said and what the caller actually heard.

The line (Twilio) queues outbound audio and echoes a `mark` once everything queued before it
has played. A mark goes after every sentence, so on barge-in the transcript keeps the
sentences whose marks came back and flags the rest as not heard."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from media.resample import PHONE_RATE
from storage.calls import SegmentRecord

# A mark comes back when the audio before it has played; a client that never echoes it
# must not hold the agent in "speaking" (deaf to the caller, silent) for the rest of the call.
MARK_GRACE_S = 3.0


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


@dataclass(frozen=True)
class CutOff:
    """What a barge-in stopped: the sentences not yet heard, and the whole answer (what an
    echo of the agent's own voice would say)."""

    unheard: list[str]
    agent_text: str


class Playback:
    def __init__(self, mark_grace_s: float = MARK_GRACE_S) -> None:
        self.utterances: list[Utterance] = []
        self._pending: dict[str, tuple[Utterance, int | None]] = {}
        self._deadlines: dict[str, float] = {}  # mark -> monotonic time it must have played by
        self._plays_until = 0.0  # when the audio queued at Twilio ends, as far as we know
        self._grace = mark_grace_s
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
        now = time.monotonic()
        self._plays_until = max(now, self._plays_until) + samples / PHONE_RATE
        self._deadlines[name] = self._plays_until + self._grace
        return name

    def end_mark(self, utt: Utterance) -> str:
        """A last mark after the whole answer ("u3.end"): its echo means all was played.
        Sentences stream in, so which one is last is only known after it was sent."""
        name = f"u{utt.id}.end"
        self._pending[name] = (utt, None)
        self._deadlines[name] = max(time.monotonic(), self._plays_until) + self._grace
        return name

    def finished(self, utt: Utterance) -> None:
        """No more sentences will be queued for this utterance."""
        self._producing -= 1
        self._update_idle()

    def on_mark(self, name: str) -> bool:
        entry = self._pending.pop(name, None)
        self._deadlines.pop(name, None)
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
        self._deadlines.clear()
        self._plays_until = 0.0
        self._update_idle()

    def expire(self, now: float) -> bool:
        """Marks overdue by more than the grace are taken as echoed (their audio was sent on a
        live stream and has had time to play). Returns True if any were."""
        overdue = [name for name, deadline in self._deadlines.items() if deadline <= now]
        for name in overdue:
            self.on_mark(name)
        return bool(overdue)

    def cut_off(self) -> CutOff:
        """What a barge-in now would stop (call it before interrupt())."""
        return CutOff(self.unheard(), " ".join(self.last_sentences()))

    def last_sentences(self) -> list[str]:
        """The sentences of the agent's latest utterance sent so far, heard or not."""
        return list(self.utterances[-1].sentences) if self.utterances else []

    def last_segment(self) -> SegmentRecord | None:
        """The agent's latest utterance as a transcript line (heard so far, or not)."""
        return self.utterances[-1].segment() if self.utterances else None

    def _update_idle(self) -> None:
        if not self.speaking:
            self.idle.set()

    def segments(self) -> list[SegmentRecord]:
        return [u.segment() for u in self.utterances if u.sentences]
