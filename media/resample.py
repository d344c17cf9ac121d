"""Sample-rate conversion with libsoxr (the `soxr` package): phone audio to the 16 kHz that
Whisper wants, and TTS output down to the 8 kHz that Twilio plays."""

from __future__ import annotations

import numpy as np
import soxr

PHONE_RATE = 8000
WHISPER_RATE = 16000


def to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def phone_to_whisper(pcm8k: np.ndarray) -> np.ndarray:
    """int16 8 kHz -> float32 16 kHz."""
    return soxr.resample(to_float(pcm8k), PHONE_RATE, WHISPER_RATE).astype(np.float32)


def to_phone(audio: np.ndarray, rate: int) -> np.ndarray:
    """float audio at `rate` -> int16 8 kHz."""
    if rate == PHONE_RATE:
        return to_int16(audio)
    return to_int16(soxr.resample(audio.astype(np.float32), rate, PHONE_RATE))
