"""Speech out: a policy's reply parts -> sentences -> piper -> mu-law 20 ms frames -> Twilio,
with a mark after every sentence and one after the whole answer. When the call is recorded,
each sentence goes to the recorder as it is sent, exactly as it went out on the wire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from media import g711
from media.recorder import StereoRecorder
from media.tts import Synthesizer, split_sentences
from routing.acts import EndCall, ReplyPart, Speak, Transfer
from voice_agent.call.playback import Playback, Utterance
from voice_agent.twilio import protocol as wire

Send = Callable[[str], Awaitable[None]]


@dataclass
class SpeechTiming:
    """perf_counter() stamps of one answer's first steps; None until they happen."""

    first_text: float | None = None
    first_audio: float | None = None  # the first sentence synthesized
    first_frame: float | None = None  # its first frame handed to the socket
    synth_started: float | None = None


@dataclass
class Spoken:
    control: EndCall | Transfer | None
    timing: SpeechTiming
    said_anything: bool


class Speaker:
    def __init__(
        self,
        stream_sid: str,
        synthesizer: Synthesizer,
        send: Send,
        playback: Playback,
        recorder: StereoRecorder | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.stream_sid, self.synthesizer = stream_sid, synthesizer
        self._executor = executor
        self._send_raw, self.playback = send, playback
        self.recorder = recorder
        self.lock = asyncio.Lock()  # one writer on the socket at a time

    async def send(self, message: str) -> None:
        async with self.lock:
            await self._send_raw(message)

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
                        await self._sentence(utt, sentence, timing, before_first_audio)
                else:
                    control = part
            for sentence in split_sentences(pending):
                await self._sentence(utt, sentence, timing, before_first_audio)
            if utt.sentences:
                await self.send(wire.mark(self.stream_sid, self.playback.end_mark(utt)))
        except asyncio.CancelledError:
            utt.interrupted = True
            raise
        finally:
            self.playback.finished(utt)
        return Spoken(control, timing, bool(utt.sentences))

    async def _sentence(
        self,
        utt: Utterance,
        sentence: str,
        timing: SpeechTiming,
        before_first_audio: Callable[[], None] | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        first = not utt.sentences and timing.first_audio is None
        if first:
            timing.synth_started = time.perf_counter()
        pcm = await loop.run_in_executor(self._executor, self.synthesizer.synthesize, sentence)
        if first:
            timing.first_audio = time.perf_counter()
            if before_first_audio:
                before_first_audio()
        frames = _frames(pcm)
        async with self.lock:
            if self.recorder is not None:  # Twilio plays it from now on, after what's queued
                self.recorder.agent_audio(g711.decode(b"".join(frames)))
            for frame in frames:
                await self._send_raw(wire.media(self.stream_sid, frame))
                if timing.first_frame is None:
                    timing.first_frame = time.perf_counter()
            name = self.playback.queued(utt, sentence, len(pcm))
            await self._send_raw(wire.mark(self.stream_sid, name))


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
