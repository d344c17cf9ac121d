"""Speech out: a policy's reply parts -> sentences -> piper -> mu-law 20 ms frames -> the
line's AudioPort, with a mark after every sentence and one after the whole answer. When the
call is recorded, each sentence goes to the recorder as it is sent, exactly as it went out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from media import g711
from media.recorder import StereoRecorder
from media.synth_pool import SynthPool
from media.tts import Synthesizer, first_clause, split_sentences
from routing.acts import EndCall, ReplyPart, Speak, Transfer
from voice_agent.call.playback import Playback, Utterance
from voice_agent.call.ports import AudioPort


@dataclass
class SpeechTiming:
    """perf_counter() stamps of one answer's first steps; None until they happen."""

    first_text: float | None = None
    first_audio: float | None = None  # the first sentence synthesized
    first_frame: float | None = None  # its first frame handed to the line
    synth_started: float | None = None


@dataclass
class Spoken:
    control: EndCall | Transfer | None
    timing: SpeechTiming
    said_anything: bool


class Speaker:
    def __init__(
        self,
        synthesizer: Synthesizer,
        port: AudioPort,
        playback: Playback,
        recorder: StereoRecorder | None = None,
        pool: SynthPool | None = None,
    ) -> None:
        self.synthesizer, self.port, self.playback = synthesizer, port, playback
        self._pool = pool
        self.recorder = recorder
        # What goes out, in order: a sentence's frames, its copy on the recording and its
        # mark go together; a clear or an answer's end mark waits for the sentence going out.
        self._lock = asyncio.Lock()

    async def clear(self) -> None:
        """The line drops whatever it still has queued."""
        async with self._lock:
            await self.port.clear()

    async def say(
        self,
        parts: AsyncIterator[ReplyPart],
        start_ms: int,
        before_first_audio: Callable[[], None] | None = None,
    ) -> Spoken:
        """Speak sentences as soon as each is complete: the first one is playing while the
        policy is still producing the rest."""
        timing = SpeechTiming()
        control: EndCall | Transfer | None = None
        utt = self.playback.begin(start_ms)
        pending = ""
        try:
            async for part in parts:
                if isinstance(part, Speak):
                    timing.first_text = timing.first_text or time.perf_counter()
                    pending += part.text
                    *done, pending = _sentences_and_rest(pending)
                    for sentence in done:
                        await self._said(utt, sentence, timing, before_first_audio)
                else:
                    control = part
            for sentence in split_sentences(pending):
                await self._said(utt, sentence, timing, before_first_audio)
            if utt.sentences:
                end = self.playback.end_mark(utt)
                async with self._lock:
                    await self.port.mark(end)
        except asyncio.CancelledError:
            utt.interrupted = True
            raise
        finally:
            self.playback.finished(utt)
        return Spoken(control, timing, bool(utt.sentences))

    async def _said(
        self,
        utt: Utterance,
        sentence: str,
        timing: SpeechTiming,
        before_first_audio: Callable[[], None] | None,
    ) -> None:
        """An answer's first sentence goes out clause by clause when it is long."""
        pieces = first_clause(sentence) if timing.first_audio is None else [sentence]
        for piece in pieces:
            await self._sentence(utt, piece, timing, before_first_audio)

    async def _sentence(
        self,
        utt: Utterance,
        sentence: str,
        timing: SpeechTiming,
        before_first_audio: Callable[[], None] | None,
    ) -> None:
        first = not utt.sentences and timing.first_audio is None
        if first:
            timing.synth_started = time.perf_counter()
        if self._pool is None:
            pcm = await asyncio.to_thread(self.synthesizer.synthesize, sentence)
        else:
            pcm = await self._pool.run(self.synthesizer.synthesize, sentence, first=first)
        if first:
            timing.first_audio = time.perf_counter()
            if before_first_audio:
                before_first_audio()
        frames = _frames(pcm)
        async with self._lock:
            if self.recorder is not None:  # the line plays it from now on, after what's queued
                self.recorder.agent_audio(g711.decode(b"".join(frames)))
            if timing.first_frame is None and frames:
                # The answer's first frame on its own: its latency ends when that went out.
                await self.port.play(frames[:1])
                timing.first_frame = time.perf_counter()
                frames = frames[1:]
            if frames:
                await self.port.play(frames)
            name = self.playback.queued(utt, sentence, len(pcm))
            await self.port.mark(name)


def _sentences_and_rest(text: str) -> list[str]:
    """Complete sentences so far, then the unfinished rest (possibly empty)."""
    sentences = split_sentences(text)
    if not sentences:
        return [""]
    if text.rstrip()[-1:] in ".!?" and text.endswith((" ", "\n")):
        return [*sentences, ""]
    return [*sentences[:-1], sentences[-1]]


def _frames(pcm: np.ndarray) -> list[bytes]:
    mulaw = g711.encode(pcm)
    mulaw += bytes([g711.SILENCE_CODE]) * (-len(mulaw) % g711.FRAME_BYTES)
    return [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
