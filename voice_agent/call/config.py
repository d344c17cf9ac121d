"""What a call session is built with: its tuning, and the engines every call shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from media.synth_pool import SynthPool
from media.tts import Synthesizer
from media.vad import EndpointerConfig
from storage.calls import SegmentRecord
from transcripts.scheduler import TranscriptionScheduler


@dataclass(frozen=True)
class SessionConfig:
    vad_aggressiveness: int = 1
    vad_gate_db: float | None = 4.0  # energy over the line's noise floor (media/vad.py)
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    barge_in_ms: int = 200  # voiced audio over the agent before we stop talking
    silence_prompt_ms: int = 8000  # a quiet line this long after the agent spoke: prompt
    # The pause's words read as a finished sentence. People pause 250-700 ms between
    # clauses, often after one that reads as finished: 280 ms cut more callers off between
    # clauses on the phone bench (bench/phone.py) than 350 ms.
    short_hangover_ms: int = 350
    long_hangover_ms: int = 900  # ...or as half an address or phone number
    # No frames at all (a stalled or half-dead stream) counts as a quiet line by the clock.
    watchdog_s: float = 0.25
    # Keys pressed make one entry, ended by '#' or by this long without a key.
    keypad_gap_s: float = 3.0


@dataclass
class Engines:
    """Built once per process and shared by every call."""

    transcriber: TranscriptionScheduler
    synthesizer: Synthesizer
    # Speech synthesis has its own threads, answers' first words first (synth_pool.py).
    synth_pool: SynthPool = field(default_factory=SynthPool)


# Each transcript line as it is said: the live feed, and the store that keeps lines as they
# happen so that a crash loses none of them.
LineListener = Callable[[SegmentRecord], None]
