"""The caller paused: transcribe now, while the hangover runs. If the words read as a finished
sentence the hangover shrinks; mid-number or mid-address it grows. If the pause was the end
of the turn, the turn's transcript is (nearly) ready when the endpointer says so."""

from __future__ import annotations

import asyncio

from media.vad import SpeechPaused
from transcripts.completeness import hangover_for
from transcripts.heard import Expect, Heard
from transcripts.scheduler import Ticket, TranscriptionScheduler
from voice_agent.call.config import SessionConfig
from voice_agent.call.inbound import CallerAudio

Transcript = asyncio.Future[tuple[Heard, float]]


class EarlyTranscript:
    def __init__(
        self,
        transcriber: TranscriptionScheduler,
        caller: CallerAudio,
        config: SessionConfig,
        vocabulary: str | None = None,
    ) -> None:
        self._transcriber, self._caller, self._config = transcriber, caller, config
        self._vocabulary = vocabulary
        # (end of the paused speech in media ms, its transcription started during the pause)
        self._current: tuple[int, Ticket] | None = None

    def start(self, pause: SpeechPaused, expect: Expect | None = None) -> None:
        ticket = self._transcriber.submit(
            pause.audio, final=False, prompt=self._vocabulary, expect=expect
        )
        self._current = (pause.end_ms, ticket)
        ticket.future.add_done_callback(lambda t: self._adapt_hangover(pause.end_ms, t))

    def drop(self) -> None:
        """The caller went on (or the call ends): that transcript is stale."""
        if self._current is not None:
            self._current[1].cancel()
            self._current = None

    def take(self, end_ms: int, usable: bool = True) -> Transcript | None:
        """The turn ended at `end_ms`: the transcription of the same audio, if that is what
        was started (and `usable`), now wanted as a final; any other is dropped. It may
        still fail with SpeculationDropped (given up under load): then transcribe anew."""
        current, self._current = self._current, None
        if current is None:
            return None
        if usable and current[0] == end_ms:
            current[1].promote()
            return current[1].future
        current[1].cancel()
        return None

    def _adapt_hangover(self, end_ms: int, task: Transcript) -> None:
        current = self._current
        if task.cancelled() or task.exception() is not None or current is None:
            return
        if current[0] != end_ms or not self._caller.in_speech:
            return
        kind = hangover_for(task.result()[0].text)
        config = self._config
        self._caller.use_hangover(
            {
                "short": config.short_hangover_ms,
                "usual": config.endpointer.hangover_ms,
                "long": config.long_hangover_ms,
            }[kind]
        )
