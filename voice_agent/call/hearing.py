"""How a call hears its caller: every transcription of the caller's audio goes through here,
with the business's vocabulary as the recognizer's prompt and what the agent last asked
for ("spell it": letters), and a pause starts an early one (EarlyTranscript)."""

from __future__ import annotations

import logging

from media.vad import SpeechEnded, SpeechPaused
from storage.calls import SegmentRecord
from transcripts.expect import expectation_after
from transcripts.heard import Expect, Heard
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.call.config import SessionConfig
from voice_agent.call.early import EarlyTranscript
from voice_agent.call.inbound import CallerAudio

log = logging.getLogger(__name__)


class Hearing:
    def __init__(
        self,
        transcriber: TranscriptionScheduler,
        caller: CallerAudio,
        config: SessionConfig,
        vocabulary: str | None,
    ) -> None:
        self._transcriber, self.vocabulary = transcriber, vocabulary
        self.early = EarlyTranscript(transcriber, caller, config, vocabulary)
        self.last_said = ""  # the agent's latest utterance: what the caller answers

    @property
    def expect(self) -> Expect | None:
        return expectation_after(self.last_said)

    def paused(self, pause: SpeechPaused) -> None:
        self.early.start(pause, self.expect)  # the hangover fits the words so far

    async def transcribe(self, speech: SpeechEnded) -> Heard:
        heard, _ = await self._transcriber.transcribe(
            speech.audio, prompt=self.vocabulary, expect=self.expect
        )
        return heard

    async def line(self, speech: SpeechEnded | None) -> SegmentRecord | None:
        """The caller's words in `speech` as a transcript line (None: no words). Never
        raises: the words that will not be answered must not fail the call's end."""
        if speech is None or not len(speech.audio):
            return None
        try:
            text = (await self.transcribe(speech)).text
        except Exception:
            log.exception("could not transcribe the caller's last words")
            return None
        return SegmentRecord("caller", text, speech.start_ms, speech.end_ms) if text else None
