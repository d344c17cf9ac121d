"""webrtcvad against its own published expectations, and the endpointer's turn logic."""

import numpy as np
import pytest

from media.vad import (
    FRAME_SAMPLES,
    Endpointer,
    EndpointerConfig,
    SpeechEnded,
    SpeechStarted,
    VoiceDetector,
)
from tests.conftest import FIXTURES

EXPECTED = {
    0: "011110111111111111111111111100",
    1: "011110111111111111111111111100",
    2: "000000111111111111111111110000",
    3: "000000111111111111111100000000",
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_webrtcvad_matches_reference_on_30ms_frames(mode: int) -> None:
    pcm = np.frombuffer((FIXTURES / "vad" / "test-audio-8k.raw").read_bytes(), dtype="<i2")
    vad = VoiceDetector(mode, gate_db=None)  # webrtcvad alone
    step = 240  # 30 ms at 8 kHz
    got = "".join(
        "1" if vad.is_speech(pcm[i : i + step]) else "0"
        for i in range(0, len(pcm) - step + 1, step)
    )
    assert got == EXPECTED[mode]


def run(
    pattern: str, config: EndpointerConfig | None = None, every: bool = False
) -> list[tuple[int, object]]:
    """Feed frames whose voice flag is given by '1'/'0'; collect (frame index, event): turn
    starts and ends, or with `every` also pauses and resumptions."""
    ep = Endpointer(
        config or EndpointerConfig(start_ms=60, start_window_ms=100, hangover_ms=200, tail_ms=100)
    )
    events = []
    for i, flag in enumerate(pattern):
        frame = np.full(FRAME_SAMPLES, i, dtype=np.int16)  # sample value = frame index
        event = ep.push(frame, flag == "1")
        if event and (every or isinstance(event, SpeechStarted | SpeechEnded)):
            events.append((i, event))
    return events


def test_turn_starts_after_enough_voice_and_ends_after_hangover() -> None:
    events = run("0000" + "1" * 20 + "0" * 15)
    (_i1, start), (i2, end) = events
    assert isinstance(start, SpeechStarted) and start.at_ms == 4 * 20
    assert isinstance(end, SpeechEnded)
    assert end.start_ms == 80 and end.end_ms == 24 * 20
    assert i2 == 24 + 10 - 1  # closed after 200 ms of silence
    frame_ids = sorted(set(end.audio.tolist()))
    assert frame_ids[0] < 4  # pre-roll kept the audio before the start
    assert 23 in frame_ids and 24 in frame_ids and 29 not in frame_ids  # 100 ms tail only


def test_a_single_click_does_not_start_a_turn() -> None:
    assert run("0001000001000000") == []


def test_a_pause_shorter_than_the_hangover_keeps_one_turn() -> None:
    events = run("1" * 10 + "0" * 8 + "1" * 10 + "0" * 12)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    assert events[1][1].end_ms == 28 * 20


def test_flush_closes_a_turn_cut_off_by_hang_up() -> None:
    ep = Endpointer(EndpointerConfig(start_ms=60, start_window_ms=100))
    for _ in range(10):
        ep.push(np.ones(FRAME_SAMPLES, np.int16), True)
    ended = ep.flush()
    assert ended is not None and ended.end_ms == 200 and len(ended.audio) > 0
    assert ep.flush() is None


def test_a_very_long_turn_is_cut_at_the_maximum() -> None:
    config = EndpointerConfig(start_ms=20, start_window_ms=20, max_turn_ms=1000)
    events = run("1" * 80, config)
    assert isinstance(events[1][1], SpeechEnded)
    assert events[1][0] == 49


def test_a_pause_is_announced_and_a_resumption_cancels_it() -> None:
    events = run("1" * 10 + "0" * 6 + "1" * 8 + "0" * 12, every=True)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == [
        "SpeechStarted",
        "SpeechPaused",
        "SpeechResumed",
        "SpeechPaused",
        "SpeechEnded",
    ]
    paused = events[1][1]
    assert paused.end_ms == 200 and len(paused.audio) > 0
    assert events[-1][1].audio.tolist()[: len(paused.audio)] == paused.audio.tolist()


def test_the_hangover_can_be_shortened_for_this_pause_only() -> None:
    ep = Endpointer(EndpointerConfig(start_ms=20, start_window_ms=20, hangover_ms=500))
    frame = np.zeros(FRAME_SAMPLES, np.int16)
    for _ in range(5):
        ep.push(frame, True)
    ep.use_hangover(200)  # a complete sentence was heard in the pause
    events = [ep.push(frame, False) for _ in range(10)]
    assert isinstance(events[9], SpeechEnded)
    for _ in range(5):
        ep.push(frame, True)
    assert ep.hangover_ms == 500, "the next turn starts with the configured hangover"


def test_a_breath_after_the_last_word_does_not_extend_the_turn() -> None:
    # 3 voiced frames (60 ms) in the pause: not enough to be the caller going on.
    events = run("1" * 10 + "0" * 6 + "111" + "0" * 12, every=True)
    kinds = [type(e).__name__ for _, e in events]
    assert "SpeechResumed" not in kinds and kinds[-1] == "SpeechEnded"
    index, ended = events[-1]
    assert ended.end_ms == 10 * 20, "the turn ends at the last word, not at the breath"
    # Closed when the hangover ran out after the last word (held a frame while the burst
    # could still have been the caller going on), not a hangover after the breath.
    assert 10 + 10 - 1 <= index <= 10 + 10 + 1
    assert ended.hangover_ms == 200


def test_voice_after_a_pause_long_enough_is_the_caller_going_on() -> None:
    events = run("1" * 10 + "0" * 6 + "1" * 8 + "0" * 12, every=True)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == [
        "SpeechStarted",
        "SpeechPaused",
        "SpeechResumed",
        "SpeechPaused",
        "SpeechEnded",
    ]
    resumed = events[2][1]
    assert resumed.at_ms == 16 * 20, "resumed where the voice came back"
    assert events[-1][1].end_ms == 24 * 20


def line_noise(seconds: float, dbfs: float, seed: int) -> np.ndarray:
    """Band-limited (300-3400 Hz) white noise at `dbfs` RMS: a phone line's hiss."""
    rng = np.random.default_rng(seed)
    n = int(8000 * seconds)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / 8000)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    hiss = np.fft.irfft(spectrum, n)
    return hiss / np.sqrt(np.mean(hiss**2)) * 32768 * 10 ** (dbfs / 20)


def voiced_frames(detector: VoiceDetector, pcm: np.ndarray) -> list[bool]:
    clipped = np.clip(pcm, -32768, 32767).astype(np.int16)
    return [
        detector.is_speech(clipped[i : i + FRAME_SAMPLES])
        for i in range(0, len(clipped) - FRAME_SAMPLES + 1, FRAME_SAMPLES)
    ]


@pytest.mark.parametrize("gate_db", [None, 4.0])
@pytest.mark.parametrize("dbfs", [-55, -45, -40])
def test_continuous_line_hiss_is_not_speech(dbfs: float, gate_db: float | None) -> None:
    flags = voiced_frames(VoiceDetector(gate_db=gate_db), line_noise(6.0, dbfs, seed=-dbfs))
    assert sum(flags[25:]) <= 3, "after half a second on the line, hiss is not voice"


@pytest.mark.parametrize("gate_db", [4.0])  # webrtcvad alone: its first frames read as voice
@pytest.mark.parametrize("name", ["sink-clogged.wav", "name-maria.wav", "yes-correct.wav"])
def test_on_a_hissing_line_the_turn_ends_where_the_words_end(
    name: str, gate_db: float | None
) -> None:
    from media.wav import read_wav_phone

    words = read_wav_phone(FIXTURES / "audio" / name).astype(np.float64)
    lead, tail = np.zeros(8000), np.zeros(16000)
    pcm = np.concatenate([lead, words, tail]) + line_noise(
        (len(words) + 24000) / 8000, -50, seed=len(name)
    )
    # Where the words end: the last 20 ms of the clean turn well above its noise-only tail.
    level = [np.sqrt(np.mean(words[i : i + 160] ** 2)) for i in range(0, len(words) - 160, 160)]
    loud = np.nonzero(np.array(level) > np.percentile(level, 95) * 10 ** (-30 / 20))[0]
    words_end_ms = 1000 + (int(loud[-1]) + 1) * 20
    endpointer, ended = Endpointer(), []
    detector = VoiceDetector(gate_db=gate_db)
    for i, voiced in enumerate(voiced_frames(detector, pcm)):
        event = endpointer.push(pcm[i * 160 : (i + 1) * 160].astype(np.int16), voiced)
        if isinstance(event, SpeechEnded):
            ended.append(event)
    assert len(ended) == 1, "one turn: not cut mid-sentence, no turn made of hiss"
    assert words_end_ms - 150 <= ended[0].end_ms <= words_end_ms + 250


class DecibelGate:
    """The gate as it was first written, in decibels (a log per frame): the reference the
    power-domain gate must agree with frame for frame."""

    def __init__(self, gate_db: float, window: int = 100) -> None:
        self.vad, self.gate_db, self.window = VoiceDetector(gate_db=None), gate_db, window
        self.energies: list[float] = []
        self.level_db = 0.0

    def is_speech(self, frame: np.ndarray) -> bool:
        voiced = self.vad.is_speech(frame)
        energy = 10.0 * float(np.log10(np.mean(frame.astype(np.float64) ** 2) + 1.0))
        self.energies.append(energy)
        self.level_db = energy - min(self.energies[-self.window :])
        return voiced and self.level_db >= self.gate_db


@pytest.mark.parametrize("gate_db", [2.0, 4.0, 8.0])
@pytest.mark.parametrize(
    ("name", "dbfs"),
    [("sink-clogged.wav", -50), ("name-maria.wav", -40), ("yes-correct.wav", None)],
)
def test_the_power_gate_decides_as_the_decibel_gate_did(
    name: str, dbfs: float | None, gate_db: float
) -> None:
    from media.wav import read_wav_phone

    words = read_wav_phone(FIXTURES / "audio" / name).astype(np.float64)
    pcm = np.concatenate([np.zeros(8000), words, np.zeros(16000), words * 0.1, np.zeros(8000)])
    if dbfs is not None:
        pcm = pcm + line_noise(len(pcm) / 8000, dbfs, seed=len(name))
    clipped = np.clip(pcm, -32768, 32767).astype(np.int16)
    detector, reference = VoiceDetector(gate_db=gate_db), DecibelGate(gate_db)
    decisions = []
    for i in range(0, len(clipped) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = clipped[i : i + FRAME_SAMPLES]
        decisions.append(detector.is_speech(frame))
        assert decisions[-1] == reference.is_speech(frame), f"frame {i // FRAME_SAMPLES}"
        assert detector.level_db == pytest.approx(reference.level_db, abs=1e-9)
    assert any(decisions) and not all(decisions)  # the fixture exercises both ways


def test_the_gate_takes_frames_of_any_integer_type_as_int16() -> None:
    pcm = np.frombuffer((FIXTURES / "vad" / "test-audio-8k.raw").read_bytes(), dtype="<i2")
    as16, as32 = VoiceDetector(gate_db=4.0), VoiceDetector(gate_db=4.0)
    for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = pcm[i : i + FRAME_SAMPLES]
        assert as16.is_speech(frame) == as32.is_speech(frame.astype(np.int32))
