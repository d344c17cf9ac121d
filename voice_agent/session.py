"""One phone call, top to bottom: inbound audio -> turns -> policy -> speech out.

    media frames -> jitter -> mu-law decode -> VAD -> endpointer
        SpeechStarted while the agent talks (and long enough)  -> barge-in: clear, cancel
        SpeechStarted while still thinking                    -> drop the answer, keep audio
        SpeechEnded                                           -> answer task:
            transcribe (shared pool) -> policy.respond -> speak sentence by sentence
    marks echoed by Twilio -> what the caller heard; EndCall -> close once it was heard

Everything CPU-heavy (Whisper, piper) runs in worker threads; the per-frame path here is
a table lookup and one webrtcvad call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from media import g711
from media.jitter import JitterBuffer
from media.tts import Synthesizer, split_sentences
from media.vad import Endpointer, EndpointerConfig, SpeechEnded, SpeechStarted, VoiceDetector
from routing.acts import Act, EndCall
from routing.policy import Policy
from storage.calls import FinishedCall, SegmentRecord, TurnRecord
from transcripts.scheduler import TranscriptionScheduler
from voice_agent import twilio_protocol as wire
from voice_agent.playback import Playback, Utterance

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class SessionConfig:
    vad_aggressiveness: int = 2
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    barge_in_ms: int = 200  # voiced audio over the agent before we stop talking


@dataclass
class Engines:
    """Built once per process and shared by every call."""

    transcriber: TranscriptionScheduler
    synthesizer: Synthesizer


class CallSession:
    def __init__(
        self,
        *,
        call_sid: str,
        stream_sid: str,
        policy: Policy,
        engines: Engines,
        send: Send,
        hang_up: Callable[[], Awaitable[None]],
        config: SessionConfig | None = None,
    ) -> None:
        self.call_sid, self.stream_sid = call_sid, stream_sid
        self.policy, self.engines = policy, engines
        self.config = config or SessionConfig()
        self._send_raw, self._hang_up = send, hang_up
        self._send_lock = asyncio.Lock()
        self._jitter = JitterBuffer()
        self._pending_bytes = bytearray()
        self._vad = VoiceDetector(self.config.vad_aggressiveness)
        self._endpointer = Endpointer(self.config.endpointer)
        self.playback = Playback()
        self.caller_segments: list[SegmentRecord] = []
        self.turns: list[TurnRecord] = []
        self._answer_task: asyncio.Task[None] | None = None
        self._answer_speaking = False
        # Caller audio not yet committed to the record: the turn being answered, which
        # becomes the start of the next turn if the caller goes on before we speak.
        self._uncommitted: SpeechEnded | None = None
        self._carry: SpeechEnded | None = None
        self._last_voiced_wall = 0.0
        self._barged_in = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended_by_agent = False

    # ---- inbound -------------------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self._run_act(await self.policy.greet(), None))

    def on_media(self, chunk: int, payload: bytes) -> None:
        for ready in self._jitter.push(chunk, payload):
            self._pending_bytes += ready
        while len(self._pending_bytes) >= g711.FRAME_BYTES:
            frame = g711.decode(bytes(self._pending_bytes[: g711.FRAME_BYTES]))
            del self._pending_bytes[: g711.FRAME_BYTES]
            self._on_frame(frame)

    def on_mark(self, name: str) -> None:
        self.playback.on_mark(name)

    def _on_frame(self, frame: np.ndarray) -> None:
        voiced = self._vad.is_speech(frame)
        event = self._endpointer.push(frame, voiced)
        if voiced and self._endpointer.in_speech:
            self._last_voiced_wall = time.perf_counter()
        if isinstance(event, SpeechStarted):
            self._on_speech_started()
        elif isinstance(event, SpeechEnded):
            self._on_speech_ended(event)
        if (
            self._endpointer.in_speech
            and not self._barged_in
            and self.playback.speaking
            and self._endpointer.voiced_ms >= self.config.barge_in_ms
        ):
            self._barge_in()

    def _on_speech_started(self) -> None:
        task = self._answer_task
        if task and not task.done() and not self._answer_speaking:
            # The caller went on before we answered: drop that answer, keep the audio.
            task.cancel()
            self._carry = self._uncommitted

    def _on_speech_ended(self, event: SpeechEnded) -> None:
        barged, self._barged_in = self._barged_in, False
        if self.playback.speaking and not barged:
            return  # a cough or "uh-huh" under the agent's speech: not a turn
        event, self._carry = _joined(self._carry, event), None
        self._uncommitted = event
        self._answer_speaking = False
        turn = TurnRecord(index=len(self.turns) + 1)
        self._answer_task = self._spawn(self._answer(event, self._last_voiced_wall, turn))

    def _barge_in(self) -> None:
        self._barged_in = True
        log.info("call %s: barge-in", self.call_sid)
        if self._answer_task and not self._answer_task.done():
            self._answer_task.cancel()
        for task in list(self._tasks):
            if task is not self._answer_task and getattr(task, "speaks", False):
                task.cancel()
        self.playback.interrupt()
        self._spawn(self._send(wire.clear(self.stream_sid)))

    # ---- answering -----------------------------------------------------------------

    async def _answer(self, speech: SpeechEnded, speech_end: float, turn: TurnRecord) -> None:
        turn.endpoint_ms = _ms(speech_end, time.perf_counter())
        text, turn.transcribe_ms = await self.engines.transcriber.transcribe(speech.audio)
        if not text:
            self._uncommitted = None
            return  # noise that looked like speech; keep listening
        t = time.perf_counter()
        act = await self.policy.respond(text)
        turn.policy_ms = _ms(t, time.perf_counter())
        # Committed: from here on the caller's words are part of the record.
        self._answer_speaking = True
        self._uncommitted = None
        self.caller_segments.append(SegmentRecord("caller", text, speech.start_ms, speech.end_ms))
        self.turns.append(turn)
        await self._run_act(act, (turn, speech_end))

    async def _run_act(self, act: Act, timing: tuple[TurnRecord, float] | None) -> None:
        await self._speak(act.text, timing)
        if isinstance(act, EndCall):
            await self.playback.idle.wait()
            self.ended_by_agent = True
            await self._hang_up()

    async def _speak(self, text: str, timing: tuple[TurnRecord, float] | None) -> None:
        task = asyncio.current_task()
        task.speaks = True  # type: ignore[union-attr]  # barge-in cancels speaking tasks
        utt = self.playback.begin(text, self._endpointer.now_ms)
        loop = asyncio.get_running_loop()
        try:
            sentences = split_sentences(text)
            for i, sentence in enumerate(sentences):
                t = time.perf_counter()
                pcm = await loop.run_in_executor(
                    None, self.engines.synthesizer.synthesize, sentence
                )
                first = not utt.sentences
                if first and timing:
                    timing[0].tts_ms = _ms(t, time.perf_counter())
                last = i == len(sentences) - 1
                await self._send_audio(utt, sentence, pcm, last, timing if first else None)
        except asyncio.CancelledError:
            utt.interrupted = True
            raise
        finally:
            self.playback.finished(utt)

    async def _send_audio(
        self,
        utt: Utterance,
        sentence: str,
        pcm: np.ndarray,
        last: bool,
        timing: tuple[TurnRecord, float] | None,
    ) -> None:
        mulaw = g711.encode(pcm)
        rest = len(mulaw) % g711.FRAME_BYTES
        if rest:
            mulaw += bytes([g711.SILENCE_CODE]) * (g711.FRAME_BYTES - rest)
        frames = [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
        async with self._send_lock:
            t = time.perf_counter()
            for i, frame in enumerate(frames):
                await self._send_raw(wire.media(self.stream_sid, frame))
                if i == 0 and timing:
                    turn, speech_end = timing
                    now = time.perf_counter()
                    turn.send_ms = _ms(t, now)
                    turn.latency_ms = _ms(speech_end, now)
                    turn.answered = True
            name = self.playback.queued(utt, sentence, len(pcm), last)
            await self._send_raw(wire.mark(self.stream_sid, name))

    async def _send(self, message: str) -> None:
        async with self._send_lock:
            await self._send_raw(message)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: task failed", self.call_sid, exc_info=task.exception())

    # ---- the end -------------------------------------------------------------------

    async def finish(self, bad_messages: int) -> FinishedCall:
        """Stop everything and return the record. A caller cut off mid-sentence is still
        transcribed: the last words of a call are often the important ones."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ready in self._jitter.flush():
            self._pending_bytes += ready
        last = _joined(self._carry or self._uncommitted, self._endpointer.flush())
        if last is not None and len(last.audio):
            with contextlib.suppress(Exception):
                text, _ = await self.engines.transcriber.transcribe(last.audio)
                if text:
                    self.caller_segments.append(
                        SegmentRecord("caller", text, last.start_ms, last.end_ms)
                    )
        segments = sorted(self.caller_segments + self.playback.segments(), key=lambda s: s.start_ms)
        answered = any(t.answered for t in self.turns)
        return FinishedCall(
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            ended_at=datetime.now(UTC),
            outcome="answered" if answered else "abandoned",
            bad_messages=bad_messages,
            segments=segments,
            turns=self.turns,
        )


def _joined(first: SpeechEnded | None, then: SpeechEnded | None) -> SpeechEnded | None:
    """One turn from two pieces the caller meant as one (a pause we took for an end)."""
    if first is None or then is None:
        return then or first
    return SpeechEnded(first.start_ms, then.end_ms, np.concatenate([first.audio, then.audio]))


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
