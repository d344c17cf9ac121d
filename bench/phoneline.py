"""A seeded telephone line between a caller and the server: what an 8 kHz recording sounds
like once it has crossed a handset, a room and the phone network.

Per call (a LineProfile, drawn from a seed): the caller's level, a little room reverb, the
300-3400 Hz telephone band, continuous line hiss (with a faint mains hum and comfort-noise-
like level steps on some lines), and the G.711 mu-law round trip. The hiss never stops: the
line has it between turns and while the agent talks too, which is what the server's VAD and
endpointer hear on a real call. Pure numpy; the same seed gives the same audio.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media import g711
from media.resample import PHONE_RATE, to_int16

Audio = npt.NDArray[np.float64]

FRAME_SAMPLES = g711.FRAME_BYTES  # 20 ms
BAND_HZ = (300.0, 3400.0)
# The ranges a profile is drawn from.
GAIN_DB = (-15.0, 0.0)
NOISE_DBFS = (-55.0, -40.0)
RT60_S = (0.15, 0.35)
WET = (0.08, 0.25)
HUM_BELOW_NOISE_DB = (10.0, 20.0)  # a hum, where a line has one, sits under the hiss
STEP_DB = (0.5, 2.0)  # comfort-noise-like level changes, where a line has them

_TAPS = 401  # Kaiser band-pass: ~100 Hz transitions, ~80 dB stop band
_NOISE_BLOCK = 4000  # samples of noise made at a time (0.5 s): one level step each


def db(x: float) -> float:
    return float(10.0 ** (x / 20.0))


def dbfs(samples: npt.ArrayLike) -> float:
    """RMS level of int16 or float (full scale 1.0) samples, in dBFS."""
    a = np.asarray(samples)
    x = a.astype(np.float64) / (32768.0 if a.dtype == np.int16 else 1.0)
    return float(10.0 * np.log10(np.mean(x**2) + 1e-20))


def band_pass_taps(band: tuple[float, float] = BAND_HZ, taps: int = _TAPS) -> Audio:
    """Linear-phase windowed-sinc band-pass. Cut-offs sit 50 Hz outside the band so that
    its edges pass nearly whole and 100 Hz / 3900 Hz are well into the stop band."""
    low, high = (band[0] - 50.0) / PHONE_RATE, (band[1] + 100.0) / PHONE_RATE
    n = np.arange(taps) - (taps - 1) / 2
    ideal = 2 * high * np.sinc(2 * high * n) - 2 * low * np.sinc(2 * low * n)
    return ideal * np.kaiser(taps, 8.0)


_BAND = band_pass_taps()


def band_limit(x: Audio) -> Audio:
    """The telephone band, without delay (the FIR's group delay is taken back out)."""
    delay = (len(_BAND) - 1) // 2
    return np.convolve(x, _BAND)[delay : delay + len(x)]


@dataclass(frozen=True)
class LineProfile:
    seed: int
    gain_db: float  # the caller's level, relative to the recording
    noise_dbfs: float  # RMS of the line hiss, before any level step
    rt60_s: float  # the room the caller is in
    wet: float  # reverb mix, relative to the direct sound
    hum_dbfs: float | None = None  # mains hum (harmonics of hum_hz), None: no hum
    hum_hz: float = 60.0
    step_db: float = 0.0  # comfort-noise-like level steps of up to +-step_db, 0: none


def draw_profile(seed: int, hum: bool = False) -> LineProfile:
    """One caller's line, from the ranges above; about half the lines have level steps.
    With `hum`, about half also hum. Off by default: webrtcvad takes the hum's harmonics
    for voice and can stay "in speech" for many seconds after a turn, which measures that
    weakness rather than latency; bench/phone.py --hum puts it on."""
    rng = np.random.default_rng(seed)
    noise = float(rng.uniform(*NOISE_DBFS))
    hums = rng.random() < 0.5 and hum
    hum_dbfs = noise - float(rng.uniform(*HUM_BELOW_NOISE_DB)) if hums else None
    return LineProfile(
        seed=seed,
        gain_db=float(rng.uniform(*GAIN_DB)),
        noise_dbfs=noise,
        rt60_s=float(rng.uniform(*RT60_S)),
        wet=float(rng.uniform(*WET)),
        hum_dbfs=hum_dbfs,
        hum_hz=float(rng.choice([50.0, 60.0])),
        step_db=float(rng.uniform(*STEP_DB)) if rng.random() < 0.5 else 0.0,
    )


def seed_for(*parts: object) -> int:
    """A stable seed from names (str hash() changes between runs)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


def room_impulse(profile: LineProfile) -> Audio:
    """Direct sound plus exponentially decaying noise: -60 dB after rt60_s."""
    rng = np.random.default_rng([profile.seed, 1])
    n = int(profile.rt60_s * PHONE_RATE)
    tail = rng.standard_normal(n) * np.exp(-6.9078 * np.arange(n) / n)
    tail *= profile.wet / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return tail


def convolve_fft(x: Audio, h: Audio) -> Audio:
    size = 1 << (len(x) + len(h) - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]


class LineNoise:
    """The line with nobody talking, as a continuous stream: hiss (and hum, steps) through
    the telephone band. Successive calls continue where the last one stopped."""

    def __init__(self, profile: LineProfile) -> None:
        self.profile = profile
        self._rng = np.random.default_rng([profile.seed, 2])
        self._fir_state = np.zeros(len(_BAND) - 1)
        # White noise through the band-pass keeps sum(taps^2) of its power.
        self._hiss_scale = db(profile.noise_dbfs) / np.sqrt(np.sum(_BAND**2))
        self._level = 1.0
        self._t = 0  # samples made so far: keeps the hum's phase continuous
        self._buffer = np.zeros(0)
        self._hum_rms = _in_band_rms(profile.hum_hz * np.arange(1, 12), 1 / np.arange(1, 12))

    def samples(self, n: int) -> Audio:
        """The next n samples of the line (float, full scale 1.0)."""
        while len(self._buffer) < n:
            self._buffer = np.concatenate([self._buffer, self._block()])
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def frame(self) -> bytes:
        """The next 20 ms of the noise-only line, as the server receives it (mu-law)."""
        return g711.encode(to_int16(self.samples(FRAME_SAMPLES)))

    def _block(self) -> Audio:
        p = self.profile
        if p.step_db:
            self._level = db(float(self._rng.uniform(-p.step_db, p.step_db)))
        raw = self._rng.standard_normal(_NOISE_BLOCK) * self._hiss_scale * self._level
        if p.hum_dbfs is not None:
            t = (self._t + np.arange(_NOISE_BLOCK)) / PHONE_RATE
            harmonics = [np.sin(2 * np.pi * p.hum_hz * k * t) / k for k in range(1, 12)]
            hum = np.sum(harmonics, axis=0)
            # Scaled so what is left of it after the band-pass is at hum_dbfs.
            raw += hum * db(p.hum_dbfs) / self._hum_rms
        self._t += _NOISE_BLOCK
        filtered = np.convolve(np.concatenate([self._fir_state, raw]), _BAND, "valid")
        self._fir_state = raw[-(len(_BAND) - 1) :]
        return filtered


def _in_band_rms(freqs: Audio, amplitudes: Audio) -> float:
    """RMS of a sum of sinusoids after the band-pass: what is left of a hum's harmonics."""
    response = np.exp(-2j * np.pi * np.outer(freqs / PHONE_RATE, np.arange(len(_BAND)))) @ _BAND
    return float(np.sqrt(np.sum((np.abs(response) * amplitudes) ** 2) / 2))


class PhoneLine:
    """One caller's line: caller audio in, what the server hears out; noise in between."""

    def __init__(self, profile: LineProfile) -> None:
        self.profile = profile
        self.noise = LineNoise(profile)
        self._room = room_impulse(profile)

    def carry(self, pcm: npt.ArrayLike) -> bytes:
        """Caller audio (int16 or float, 8 kHz) as mu-law after the line. Same length, no
        delay: sample i of the result is sample i of the input (plus reverb and noise)."""
        a = np.asarray(pcm)
        x = a.astype(np.float64) / (32768.0 if a.dtype == np.int16 else 1.0)
        x = convolve_fft(x * db(self.profile.gain_db), self._room)
        heard = band_limit(x) + self.noise.samples(len(x))
        return g711.encode(to_int16(heard))

    def hear(self, pcm: npt.ArrayLike) -> npt.NDArray[np.int16]:
        """carry(), decoded: int16 8 kHz as the server decodes it."""
        return g711.decode(self.carry(pcm))

    def noise_frame(self) -> bytes:
        return self.noise.frame()
