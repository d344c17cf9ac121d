"""A scripted transcriber: the words of the fixture turns, in Whisper's slot.

Tests of what the receptionist does with a caller's words (the booking it makes, the name it
takes down) need those exact words. Whisper hears the same audio a little differently from
run to run, because where a turn is cut depends on timing, so those tests run the whole
live pipeline (WebSocket, jitter buffer, VAD, endpointer, policy, piper) with this in place
of Whisper. It recognises which fixture turn a stretch of caller audio comes from by
cross-correlation with that turn's audio (as it arrives: mu-law, 8 kHz, resampled to 16 kHz)
and answers with the words of the manifest's text that fall in the stretch it was given, so
a pause the endpointer cuts mid-sentence gives the first words, as Whisper would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media import g711
from media.resample import phone_to_whisper
from media.tts import PiperSynthesizer
from tests.conftest import AUDIO, MANIFEST, RunningServer, ServerThread
from transcripts.heard import Heard
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.app import create_app
from voice_agent.call.session import Engines
from voice_agent.replay.audio import load_turn
from voice_agent.settings import Settings

MATCH = 0.8  # cosine: the same audio scores ~1.0; two different fixture turns at most 0.26
FRAME = 160  # 10 ms at 16 kHz: the loudness envelope that picks the candidates
CANDIDATES = 3  # turns whose envelope fits best, then compared sample by sample


@dataclass
class _Turn:
    text: str
    audio: np.ndarray  # float32 16 kHz, as the transcriber receives it
    energy: np.ndarray  # running sum of audio**2, for the correlation's normalisation
    voiced: tuple[int, int]  # first and last loud sample: where the words are
    envelope: np.ndarray
    envelope_energy: np.ndarray


def _fixture_turn(path: Path, text: str) -> _Turn:
    audio = phone_to_whisper(g711.decode(load_turn(path))).astype(np.float64)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    voiced = (int(loud[0]), int(loud[-1])) if loud.size else (0, len(audio))
    envelope = _envelope(audio)
    return _Turn(
        text,
        audio.astype(np.float32),
        _running_energy(audio),
        voiced,
        envelope,
        _running_energy(envelope),
    )


def _envelope(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    return np.sqrt(np.mean(frames**2, axis=1))


def _running_energy(r: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(r**2)])


def _envelope_fit(x_env: np.ndarray, turn: _Turn) -> float:
    norm = float(np.linalg.norm(x_env))
    if len(x_env) == 0 or len(turn.envelope) == 0 or norm == 0:
        return 0.0
    return _align(x_env, norm, turn.envelope, turn.envelope_energy)[0]


class ScriptedTranscriber:
    """Transcriber protocol: float32 16 kHz -> the fixture words in it ('' for other audio)."""

    def __init__(self, turns: dict[str, str] | None = None) -> None:
        texts = turns or {name: turn["text"] for name, turn in MANIFEST["turns"].items()}
        self.turns = [_fixture_turn(AUDIO / name, text) for name, text in texts.items()]

    def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
        return Heard(self._words(audio))

    def _words(self, audio: np.ndarray) -> str:
        x = audio.astype(np.float64)
        norm = float(np.sqrt(np.sum(x**2)))
        if norm < 1e-3:
            return ""
        x_env = _envelope(x)
        likely = sorted(self.turns, key=lambda t: _envelope_fit(x_env, t))[-CANDIDATES:]
        best: tuple[float, _Turn, int] | None = None
        for turn in likely:
            score, offset = _align(x, norm, turn.audio.astype(np.float64), turn.energy)
            if best is None or score > best[0]:
                best = (score, turn, offset)
        if best is None or best[0] < MATCH:
            return ""
        _, turn, offset = best
        return _words_between(turn, offset, offset + len(x))


def _align(x: np.ndarray, norm: float, r: np.ndarray, energy: np.ndarray) -> tuple[float, int]:
    """Max over shifts of the cosine between x and the stretch of r under it, and that shift
    (r's index where x starts; negative when x starts before r). `energy`: running sum of
    r**2."""
    m, n = len(x), len(r)
    size = 1 << (m + n).bit_length()
    # c[k] = sum_i x[i] * r[i + k - (m - 1)] for k = 0 .. m + n - 2
    c = np.fft.irfft(np.fft.rfft(x[::-1], size) * np.fft.rfft(r, size), size)[: m + n - 1]
    shifts = np.arange(m + n - 1) - (m - 1)
    lo, hi = np.clip(shifts, 0, n), np.clip(shifts + m, 0, n)
    under = np.sqrt(np.maximum(energy[hi] - energy[lo], 1e-12))
    scores = c / (norm * under)
    scores[(hi - lo) < min(m, n) // 2] = 0.0  # a sliver of overlap proves nothing
    k = int(np.argmax(scores))
    return float(scores[k]), int(shifts[k])


def _words_between(turn: _Turn, start: int, end: int) -> str:
    """The text's words whose place in the spoken stretch falls in [start, end): words are
    spread over the voiced stretch by their length."""
    words = turn.text.split()
    first, last = turn.voiced
    if start <= first and end >= last:
        return turn.text
    sizes = np.array([len(w) + 1 for w in words], dtype=np.float64)
    centres = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
    at = first + centres * (last - first)
    return " ".join(w for w, a in zip(words, at, strict=True) if start <= a < end)


def scripted_engines(settings: Settings) -> Engines:
    """The engines `create_app` loads, with the scripted transcriber in Whisper's place."""
    return Engines(
        transcriber=TranscriptionScheduler(ScriptedTranscriber(), workers=1),
        synthesizer=PiperSynthesizer(settings.piper_voice),
    )


@contextmanager
def scripted_server(settings: Settings) -> Iterator[RunningServer]:
    """A real server, as `serve` runs it, that hears the fixture turns' scripted words."""
    thread = ServerThread(app=create_app(settings, loader=scripted_engines))
    with thread as url:
        yield RunningServer(url=url, settings=settings, app=thread.app)
