"""Reading caller audio from WAV files, with errors that say what is wrong."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np

from media.resample import PHONE_RATE, to_phone

MAX_FILE_BYTES = 64 << 20


class AudioFileError(ValueError):
    """A file that cannot be used as caller audio."""


def read_wav_phone(path: str | Path) -> np.ndarray:
    """Any 16-bit PCM mono/stereo WAV -> int16 at 8 kHz (mixed down, resampled)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise AudioFileError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = (
                w.getnchannels(),
                w.getsampwidth(),
                w.getframerate(),
                w.getnframes(),
            )
            if width != 2:
                raise AudioFileError(f"{path}: {8 * width}-bit samples; need 16-bit PCM")
            if not 1 <= channels <= 8 or not 4000 <= rate <= 192_000:
                raise AudioFileError(f"{path}: implausible header ({channels} ch, {rate} Hz)")
            raw = w.readframes(n)
    except AudioFileError:
        raise
    except (
        wave.Error,
        EOFError,
        OSError,
        ValueError,
        OverflowError,
        RuntimeError,
        struct.error,
        MemoryError,
    ) as exc:  # the stdlib reader's ways of saying "corrupt"
        raise AudioFileError(f"{path}: not a readable WAV file ({exc})") from exc
    usable = len(raw) - len(raw) % (2 * channels)
    if usable == 0:
        raise AudioFileError(f"{path}: no audio samples")
    pcm = np.frombuffer(raw[:usable], dtype="<i2").reshape(-1, channels)
    mono = pcm.mean(axis=1) / 32768.0 if channels > 1 else pcm[:, 0] / 32768.0
    if rate == PHONE_RATE:
        return pcm[:, 0].copy() if channels == 1 else to_phone(mono, rate)
    return to_phone(mono, rate)


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = PHONE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
