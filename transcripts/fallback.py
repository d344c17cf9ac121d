"""A recognizer that may fail (a hosted one: down, slow, 5xx, a bad key), backed by one that
does not (the bundled Whisper), so that a caller's turn is always transcribed.

Generic rather than part of the hosted engine: the hosted engine stays a plain client whose
failures are exceptions, and the outage's state (one log line for it, when to try again) is
kept once for every worker thread.

During an outage the primary is tried again at most once every `retry_after_s`, by one turn;
the other turns go to the fallback at once, so callers do not each wait out a stalled
service's timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from transcripts.engine import Transcriber
from transcripts.heard import Expect, Heard

log = logging.getLogger(__name__)


class FallbackTranscriber:
    def __init__(
        self,
        primary: Transcriber,
        fallback: Transcriber,
        retry_after_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary, self.fallback = primary, fallback
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()  # worker threads share the outage
        self._down_since: float | None = None
        self._next_try = 0.0
        self.primary_turns = 0  # transcribed by the primary
        self.fallback_turns = 0  # transcribed by the fallback
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def transcribe(
        self, audio: np.ndarray, prompt: str | None = None, expect: Expect | None = None
    ) -> Heard:
        if self._try_primary():
            try:
                heard = self.primary.transcribe(audio, prompt, expect)
            except Exception as exc:
                self._failed(exc)
            else:
                self._answered()
                return heard
        with self._lock:
            self.fallback_turns += 1
        return self.fallback.transcribe(audio, prompt, expect)

    def _try_primary(self) -> bool:
        with self._lock:
            if self._down_since is None:
                return True
            now = self._clock()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_after_s  # this turn probes; others wait
            return True

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            now = self._clock()
            self._next_try = now + self.retry_after_s
            if self._down_since is not None:
                return
            self._down_since = now
            self.outages += 1
        log.warning(
            "speech recognition failed: %s; the local recognizer transcribes until it "
            "answers again (tried every %g s)",
            exc,
            self.retry_after_s,
        )

    def _answered(self) -> None:
        with self._lock:
            self.primary_turns += 1
            if self._down_since is None:
                return
            lasted, self._down_since = self._clock() - self._down_since, None
            local = self.fallback_turns
        log.warning(
            "speech recognition answers again after %.0f s (%d turns transcribed locally so far)",
            lasted,
            local,
        )
