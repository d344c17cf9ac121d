"""Voice activity (webrtcvad) and the endpointer that turns per-frame decisions into turns.

The endpointer runs on media time (frame counts), not wall time, so it behaves the same
whether audio arrives at real-time pace or all at once from a replayed file.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import webrtcvad

from media.resample import PHONE_RATE

FRAME_MS = 20
FRAME_SAMPLES = PHONE_RATE * FRAME_MS // 1000


class VoiceDetector:
    """webrtcvad on 8 kHz int16 frames of 10, 20 or 30 ms, gated by the line's noise floor:
    a frame counts as voice only `gate_db` over the quietest frame of the last
    `floor_window_ms` (None: webrtcvad alone).

    On a line with continuous hiss webrtcvad alone both drops syllables of quiet callers
    (at aggressiveness 2: a turn ends mid-sentence) and holds "voice" into the hiss after
    the last word (at aggressiveness 1, on the phone bench's tuning calls: answers 2-5 s
    late). Aggressiveness 1 keeps the syllables and the gate drops the frames that are only
    the line; on a digitally silent line the floor is zero and the gate passes everything
    webrtcvad does. The gate also trims ~100 ms of reverberant tail off every turn's end,
    so the hangovers are ~100 ms longer than they were with webrtcvad alone."""

    def __init__(
        self,
        aggressiveness: int = 1,
        rate: int = PHONE_RATE,
        gate_db: float | None = 4.0,
        floor_window_ms: int = 2000,
    ) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._rate = rate
        self._gate_db = gate_db
        # The gate compares powers, not decibels: energy = 10*log10(P + 1) with P the mean
        # square, so "energy - floor >= gate_db" is "P + 1 >= (P_min + 1) * 10^(gate/10)".
        # Per frame that is one integer dot product, no log and no float copy; the
        # decibels are worked out only when someone reads level_db.
        self._gate_ratio = 10.0 ** (gate_db / 10.0) if gate_db is not None else 0.0
        self._floor = _RunningMin(max(1, floor_window_ms // FRAME_MS))
        self._power = self._floor_power = 1.0  # the last frame's P + 1, and the floor's

    @property
    def level_db(self) -> float:
        """The last frame's energy over the noise floor."""
        return 10.0 * float(np.log10(self._power)) - 10.0 * float(np.log10(self._floor_power))

    def is_speech(self, frame: np.ndarray) -> bool:
        pcm = frame if frame.dtype == np.int16 else frame.astype(np.int16)
        voiced = self._vad.is_speech(pcm.tobytes(), self._rate)
        if self._gate_db is None:
            return voiced
        wide = pcm.astype(np.int64)  # int16 squares overflow; their sum is exact in int64
        self._power = float(wide @ wide) / len(pcm) + 1.0
        self._floor_power = self._floor.push(self._power)
        return voiced and self._power >= self._floor_power * self._gate_ratio


class _RunningMin:
    """The minimum of the last `size` values, O(1) amortized per value."""

    def __init__(self, size: int) -> None:
        self._size, self._count = size, 0
        self._window: deque[tuple[int, float]] = deque()  # (index, value), values rising

    def push(self, value: float) -> float:
        window = self._window
        while window and window[-1][1] >= value:
            window.pop()
        window.append((self._count, value))
        self._count += 1
        if window[0][0] <= self._count - 1 - self._size:
            window.popleft()
        return window[0][1]


@dataclass(frozen=True)
class EndpointerConfig:
    start_ms: int = 100  # voiced audio within the start window that opens a turn
    start_window_ms: int = 200
    # Silence that closes a turn (a session may change it per pause). 600 ms of silence as
    # the gated detector finds it is what 500 ms was as webrtcvad alone found it: that ran
    # ~100 ms into reverberant tails and hiss, so the caller's real pause is unchanged.
    hangover_ms: int = 600
    pause_ms: int = 100  # silence that may be the end: speculative work starts here
    # Voice after a pause counts (the caller goes on) once this much of it has come; a
    # shorter burst (a breath, a click, the line's noise) does not extend the turn.
    resume_ms: int = 140
    pre_roll_ms: int = 200  # audio kept from before the start, so first syllables survive
    tail_ms: int = 200  # silence kept after the last voiced frame
    max_turn_ms: int = 30_000


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int  # media time of the first voiced frame that counted toward the start


@dataclass(frozen=True)
class SpeechEnded:
    start_ms: int
    end_ms: int  # media time just after the last voiced frame
    audio: np.ndarray = field(repr=False)  # int16 8 kHz, pre-roll to tail
    hangover_ms: int | None = None  # the silence that closed it (None: length, or flush)


@dataclass(frozen=True)
class SpeechPaused:
    """The caller stopped for pause_ms: maybe the end. The audio so far, as SpeechEnded
    would carry it, lets the transcription start while the hangover runs."""

    start_ms: int
    end_ms: int
    audio: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class SpeechResumed:
    """Voice again after a SpeechPaused: whatever was started for it is stale."""

    at_ms: int


VadEvent = SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded


class Endpointer:
    """Feed 20 ms frames with their voice decision; get SpeechStarted / SpeechEnded."""

    def __init__(self, config: EndpointerConfig | None = None) -> None:
        self.config = config or EndpointerConfig()
        c = self.config
        self._start_frames = max(1, c.start_ms // FRAME_MS)
        self._window: deque[bool] = deque(maxlen=max(1, c.start_window_ms // FRAME_MS))
        self._pre_roll: deque[np.ndarray] = deque(maxlen=max(1, c.pre_roll_ms // FRAME_MS))
        self._frames_seen = 0
        self._in_speech = False
        self._turn: list[np.ndarray] = []
        self._turn_start_ms = 0
        self._last_voiced_end_ms = 0
        self._silence_run = 0
        self._burst = self._burst_gap = 0  # voiced frames after a pause, quiet ones since
        self._pause_sent = False
        self.voiced_ms = 0  # voiced audio in the current turn; barge-in reads this
        # This turn's hangover (use_hangover() changes it): back to the configured one
        # whenever a turn starts or the caller's voice resumes.
        self._hangover_ms = self.config.hangover_ms

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def now_ms(self) -> int:
        return self._frames_seen * FRAME_MS

    @property
    def hangover_ms(self) -> int:
        """The silence that closes the current turn."""
        return self._hangover_ms

    def use_hangover(self, ms: int) -> None:
        """The silence that closes the current turn, from this pause on: a session shortens
        it once a pause's transcript reads as a complete sentence, and lengthens it in the
        middle of a number or an address. Voice again, or the next turn, resets it."""
        self._hangover_ms = ms

    def push(self, frame: np.ndarray, voiced: bool) -> VadEvent | None:
        frame_start_ms = self.now_ms
        self._frames_seen += 1
        if not self._in_speech:
            return self._push_idle(frame, voiced, frame_start_ms)
        return self._push_speaking(frame, voiced)

    def _push_idle(self, frame: np.ndarray, voiced: bool, frame_start_ms: int) -> VadEvent | None:
        self._window.append(voiced)
        self._pre_roll.append(frame)
        if sum(self._window) < self._start_frames:
            return None
        self._in_speech = True
        window_ms = len(self._window) * FRAME_MS
        first_voiced = next(i for i, v in enumerate(self._window) if v)
        self._turn_start_ms = frame_start_ms + FRAME_MS - window_ms + first_voiced * FRAME_MS
        self._turn = list(self._pre_roll)
        self._pre_roll.clear()
        self._window.clear()
        self._silence_run = 0
        self._burst = self._burst_gap = 0
        self._pause_sent = False
        self._last_voiced_end_ms = self.now_ms
        self.voiced_ms = self._start_frames * FRAME_MS
        self._hangover_ms = self.config.hangover_ms
        return SpeechStarted(at_ms=max(0, self._turn_start_ms))

    def _push_speaking(self, frame: np.ndarray, voiced: bool) -> VadEvent | None:
        self._turn.append(frame)
        paused = self._silence_run * FRAME_MS >= self.config.pause_ms
        event: VadEvent | None = None
        if voiced and not paused:
            self._voice()
        elif voiced:
            # After a pause the silence keeps counting through a burst until the burst is
            # long enough to be the caller going on.
            self._silence_run += 1
            self._burst += 1
            self._burst_gap = 0
            if self._burst * FRAME_MS >= self.config.resume_ms:
                self.voiced_ms += (self._burst - 1) * FRAME_MS
                event = SpeechResumed(at_ms=self.now_ms - self._burst * FRAME_MS)
                self._voice()
        else:
            self._silence_run += 1
            self._burst_gap += 1
            if self._burst_gap > 1:  # two quiet frames end a burst
                self._burst = 0
        too_long = self.now_ms - self._turn_start_ms >= self.config.max_turn_ms
        # A burst still undecided holds the close: it may be the caller going on.
        if self._silence_run * FRAME_MS >= self._hangover_ms and not self._burst:
            return self._close(self._hangover_ms)
        if too_long:
            return self._close()
        if (
            event is None
            and not self._pause_sent
            and self._silence_run * FRAME_MS >= (self.config.pause_ms)
        ):
            self._pause_sent = True
            return SpeechPaused(self._turn_start_ms, self._last_voiced_end_ms, self._audio())
        return event

    def _voice(self) -> None:
        self._silence_run = 0
        self._burst = self._burst_gap = 0
        self._pause_sent = False
        self._last_voiced_end_ms = self.now_ms
        self.voiced_ms += FRAME_MS
        self._hangover_ms = self.config.hangover_ms

    def _audio(self) -> np.ndarray:
        keep = min(self._silence_run, self.config.tail_ms // FRAME_MS)
        frames = self._turn[: len(self._turn) - self._silence_run + keep]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def _close(self, hangover_ms: int | None = None) -> SpeechEnded:
        event = SpeechEnded(
            start_ms=max(0, self._turn_start_ms),
            end_ms=self._last_voiced_end_ms,
            audio=self._audio(),
            hangover_ms=hangover_ms,
        )
        self._in_speech = False
        self._turn = []
        self.voiced_ms = 0
        return event

    def flush(self) -> SpeechEnded | None:
        """Close an open turn at the end of the stream (the caller hung up mid-sentence)."""
        return self._close() if self._in_speech else None
