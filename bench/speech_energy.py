"""Where speech starts and ends in a caller's clean recording, by energy alone.

The bench times the agent from the end of the caller's speech. Taking that end from
webrtcvad (or the server's own VAD) would measure the server with its own ruler, so this
uses plain 10 ms RMS windows against a threshold set by the turn's loud level and its
noise floor, on the recording before it goes through the phone line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WINDOW = 80  # 10 ms at 8 kHz
BELOW_LOUD_DB = 35.0  # speech is what comes within this of the turn's loud windows...
ABOVE_FLOOR_DB = 6.0  # ...and stands this far above its quiet ones...
NUCLEUS_BELOW_LOUD_DB = 25.0  # ...in a stretch that somewhere gets this close to loud
FLOOR_DBFS = -60.0  # never below this, whatever the recording
MIN_RUN = 2  # windows: a lone click is not speech
JOIN_GAP = 15  # windows: stretches of speech closer than this belong together
DIGITAL_SILENCE_DBFS = -90.0  # padding of exact zeros says nothing of the noise floor


@dataclass(frozen=True)
class SpeechExtent:
    start: int  # first sample of the first speech window
    end: int  # the sample after the last speech window
    threshold_dbfs: float


def window_levels(pcm: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """dBFS of each whole 10 ms window."""
    a = np.asarray(pcm)
    x = a.astype(np.float64) / (32768.0 if a.dtype == np.int16 else 1.0)
    n = len(x) // WINDOW
    power = np.mean(x[: n * WINDOW].reshape(n, WINDOW) ** 2, axis=1)
    return 10.0 * np.log10(power + 1e-20)


def speech_extent(pcm: npt.ArrayLike) -> SpeechExtent | None:
    """First and last speech in int16 (or float, full scale 1.0) 8 kHz audio; None if
    nothing stands out of the noise."""
    levels = window_levels(pcm)
    heard = levels[levels > DIGITAL_SILENCE_DBFS]
    if len(heard) == 0:
        return None
    loud = float(np.percentile(heard, 95))
    floor = float(np.percentile(heard, 10))
    threshold = max(loud - BELOW_LOUD_DB, floor + ABOVE_FLOOR_DB, FLOOR_DBFS)
    # Two thresholds, as in a Schmitt trigger: a stretch of noise that happens to top the
    # low one is not speech unless some syllable in it is loud.
    # Stretches a stop consonant or a breath apart are one: the "s" of "hearts" is quiet.
    nucleus = levels > loud - NUCLEUS_BELOW_LOUD_DB
    runs = [(a, b) for a, b in _runs(levels > threshold) if b - a >= MIN_RUN]
    runs = [(a, b) for a, b in _merged(runs, JOIN_GAP) if nucleus[a:b].any()]
    if not runs:
        return None
    return SpeechExtent(runs[0][0] * WINDOW, runs[-1][1] * WINDOW, threshold)


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, after last) of each stretch of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _merged(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and a - out[-1][1] < gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
