"""The bench's phone line (bench/phoneline.py), its energy end of speech
(bench/speech_energy.py), and the stand-in caller streaming the line's noise between turns."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from bench.phoneline import NOISE_DBFS, LineNoise, LineProfile, PhoneLine, dbfs, draw_profile
from bench.speech_energy import speech_extent
from media import g711
from media.wav import read_wav_phone
from tests.conftest import AUDIO
from voice_agent.replay.audio import SILENCE_FRAME
from voice_agent.replay.caller import caller_turn

RATE = 8000


def tone(freq: float, seconds: float = 1.0, dbfs_rms: float = -12.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.sqrt(2) * 10 ** (dbfs_rms / 20) * np.sin(2 * np.pi * freq * t)


def level_at(pcm: np.ndarray, freq: float) -> float:
    """dBFS (RMS) of the component at `freq`: one DFT bin, so line hiss barely counts."""
    x = pcm.astype(np.float64) / 32768.0
    x = x[RATE // 4 : -RATE // 4]  # away from the edges (filter and reverb onsets)
    t = np.arange(len(x)) / RATE
    amplitude = 2 * np.abs(np.sum(x * np.exp(-2j * np.pi * freq * t))) / len(x)
    return float(20 * np.log10(amplitude / np.sqrt(2) + 1e-12))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_line_keeps_the_telephone_band(seed: int) -> None:
    profile = draw_profile(seed, hum=True)
    for freq, keep in ((100.0, False), (1000.0, True), (3900.0, False)):
        heard = PhoneLine(profile).hear(tone(freq))
        change = level_at(heard, freq) - (-12.0 + profile.gain_db)
        if keep:
            assert abs(change) < 3.0, (freq, change)
        else:
            assert change < -20.0, (freq, change)


@pytest.mark.parametrize("seed", range(8))
def test_noise_only_frames_are_at_the_profiles_level(seed: int) -> None:
    profile = draw_profile(seed, hum=True)
    noise = LineNoise(profile)
    frames = [noise.frame() for _ in range(150)]
    assert all(len(f) == g711.FRAME_BYTES for f in frames)
    level = dbfs(g711.decode(b"".join(frames)))
    assert abs(level - profile.noise_dbfs) < 3.0
    assert NOISE_DBFS[0] - 3.0 < level < NOISE_DBFS[1] + 3.0
    assert b"".join(frames) != SILENCE_FRAME * len(frames)


def test_profiles_stay_in_their_ranges() -> None:
    for seed in range(50):
        p = draw_profile(seed, hum=True)
        assert -15.0 <= p.gain_db <= 0.0
        assert NOISE_DBFS[0] <= p.noise_dbfs <= NOISE_DBFS[1]
        assert 0.15 <= p.rt60_s <= 0.35
        assert p.hum_dbfs is None or p.hum_dbfs < p.noise_dbfs
    assert all(draw_profile(s).hum_dbfs is None for s in range(20))


def test_same_seed_same_audio_other_seed_other_audio() -> None:
    speech = read_wav_phone(AUDIO / "yes-correct.wav")
    first = PhoneLine(draw_profile(7)).carry(speech)
    again = PhoneLine(draw_profile(7)).carry(speech)
    other = PhoneLine(draw_profile(8)).carry(speech)
    assert first == again
    assert first != other
    assert len(first) == len(speech)


def test_the_noise_runs_on_without_a_seam() -> None:
    """Frame by frame or all at once: the same stream."""
    profile = LineProfile(seed=3, gain_db=0.0, noise_dbfs=-45.0, rt60_s=0.2, wet=0.1)
    a, b = LineNoise(profile), LineNoise(profile)
    framed = np.concatenate([a.samples(160) for _ in range(100)])
    assert np.allclose(framed, b.samples(16000))


def padded(speech: np.ndarray, silence_ms: int, noise_dbfs: float = -45.0) -> np.ndarray:
    """The turn, then digital silence, then a second of band-limited noise."""
    rng = np.random.default_rng(0)
    noise = np.convolve(rng.standard_normal(RATE), np.hanning(5), "same")
    noise *= 10 ** (noise_dbfs / 20) / np.sqrt(np.mean(noise**2)) * 32768
    tail = np.concatenate([np.zeros(silence_ms * RATE // 1000), noise])
    return np.concatenate([speech.astype(np.float64), tail]).astype(np.int16)


@pytest.mark.parametrize("silence_ms", [200, 400])
def test_energy_end_of_a_tone_burst(silence_ms: int) -> None:
    lead = np.zeros(RATE // 4)
    burst = tone(440.0, 1.2, -9.0) * 32768
    pcm = padded(np.concatenate([lead, burst]), silence_ms)
    extent = speech_extent(pcm)
    assert extent is not None
    assert abs(extent.start - len(lead)) <= 0.06 * RATE
    assert abs(extent.end - (len(lead) + len(burst))) <= 0.06 * RATE


def test_energy_end_of_a_recorded_turn() -> None:
    speech = read_wav_phone(AUDIO / "time-thursday.wav")
    alone = speech_extent(speech)
    noisy = speech_extent(padded(speech, 300))
    assert alone is not None and noisy is not None
    assert abs(noisy.end - alone.end) <= 0.06 * RATE
    # The fixture has 300 ms of line noise after the words: the end is inside, not after.
    assert 0.15 * RATE <= len(speech) - alone.end <= 0.6 * RATE


def test_digital_silence_has_no_speech() -> None:
    assert speech_extent(np.zeros(RATE, np.int16)) is None


class FakePeer:
    """The Twilio peer as caller_turn uses it; the agent answers a few frames after the
    turn, with a short answer whose last mark comes straight back."""

    def __init__(self, answer_after: int) -> None:
        self.fast = True
        self.sent: list[bytes] = []
        self.agent_frames: list[bytes] = []
        self.first_agent_frame: float | None = None
        self.agent_done = asyncio.Event()
        self.closed = asyncio.Event()
        self.answer_at: int | None = None
        self.answer_after = answer_after
        self.turn_frames = 0

    async def send_audio(self, frame: bytes) -> None:
        self.sent.append(frame)
        if len(self.sent) == self.turn_frames + self.answer_after:
            self.first_agent_frame = time.perf_counter()
            self.agent_frames += [b"\xff" * 160] * 5
            self.agent_done.set()

    @property
    def answer_finished(self) -> bool:
        return self.agent_done.is_set()


async def test_the_caller_sends_line_noise_between_turns() -> None:
    speech = read_wav_phone(AUDIO / "yes-correct.wav")
    line = PhoneLine(draw_profile(11))
    mulaw = line.carry(speech)
    end = speech_extent(speech)
    assert end is not None
    peer = FakePeer(answer_after=40)
    peer.turn_frames = -(-len(mulaw) // 160)
    result = await caller_turn(
        peer,  # type: ignore[arg-type]
        "yes-correct.wav",
        mulaw,
        5.0,
        line_noise=line.noise_frame,
        end_sample=end.end,
    )
    after = peer.sent[peer.turn_frames :]
    assert len(after) >= 39
    assert SILENCE_FRAME not in after
    assert all(len(f) == g711.FRAME_BYTES for f in after)
    level = dbfs(g711.decode(b"".join(after)))
    assert abs(level - line.profile.noise_dbfs) < 4.0
    assert result.end_latency_ms is not None and result.end_latency_ms >= 0
    assert result.end_sent_at is not None


async def test_without_a_line_the_caller_sends_digital_silence() -> None:
    mulaw = g711.encode(read_wav_phone(AUDIO / "yes-correct.wav"))
    peer = FakePeer(answer_after=40)
    peer.turn_frames = -(-len(mulaw) // 160)
    result = await caller_turn(peer, "yes-correct.wav", mulaw, 5.0)  # type: ignore[arg-type]
    assert set(peer.sent[peer.turn_frames :]) == {SILENCE_FRAME}
    assert result.latency_ms is not None
    assert result.end_latency_ms is None and result.end_sent_at is None
