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
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    barge_in_ms: int = 200  # voiced audio over the agent before we stop talking
    silence_prompt_ms: int = 8000  # a quiet line this long after the agent spoke: prompt
    # The pause's words read as a finished sentence. With the VAD gated by the line's noise
    # floor a turn's end is found ~100 ms nearer the real end of the words than webrtcvad
    # alone found it (reverberant tails and hiss no longer count as voice), so 280 ms waits
    # for as much real silence as 350 ms did: on fixture sentences joined by 300-700 ms
    # pauses over a simulated line, 19 of 28 joins cut at 280 ms against 18 of 28 before.
    short_hangover_ms: int = 280
    long_hangover_ms: int = 900  # ...or as half an address or phone number
    # No frames at all (a stalled or half-dead stream) counts as a quiet line by the clock.
    watchdog_s: float = 0.25


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
