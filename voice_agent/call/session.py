"""One phone call, top to bottom: inbound audio -> turns -> policy -> speech out.

    media frames -> jitter -> mu-law decode -> VAD -> endpointer
        SpeechStarted while the agent talks (and long enough)  -> barge-in: clear, cancel
        SpeechStarted while still thinking                    -> drop the answer, keep audio
        SpeechEnded                                           -> answer task:
            transcribe (shared pool) -> policy.respond -> speak sentence by sentence
        a quiet line after the agent spoke                    -> policy.on_silence
    marks echoed by Twilio -> what the caller heard
    recorder (only when the business records calls): every inbound frame and every sentence
        sent, on one stereo timeline; barge-in clears what the caller never heard
    EndCall / Transfer -> close the stream once the last words were heard

Everything CPU-heavy (Whisper, piper) runs in worker threads; the per-frame path here is
a table lookup and one webrtcvad call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from media import g711
from media.jitter import JitterBuffer
from media.recorder import StereoRecorder
from media.tts import Synthesizer
from media.vad import (
    Endpointer,
    EndpointerConfig,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    VoiceDetector,
)
from routing.acts import ReplyPart, Speak, Transfer
from routing.policy import Policy
from storage.calls import FinishedCall, SegmentRecord, TurnRecord
from transcripts.backchannel import is_backchannel, is_echo
from transcripts.completeness import hangover_for
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.call.playback import Playback
from voice_agent.call.speaker import Send, Speaker, Spoken
from voice_agent.twilio import protocol as wire

log = logging.getLogger(__name__)

FRAME_MS = 20


@dataclass(frozen=True)
class SessionConfig:
    vad_aggressiveness: int = 2
    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    barge_in_ms: int = 200  # voiced audio over the agent before we stop talking
    silence_prompt_ms: int = 8000  # a quiet line this long after the agent spoke: prompt
    # The pause's words read as a finished sentence. Above the 250-350 ms people (and the
    # fixture voice) pause between clauses: at 250 ms the agent cut callers off mid-answer.
    short_hangover_ms: int = 350
    long_hangover_ms: int = 900  # ...or as half an address or phone number
    # No frames at all (a stalled or half-dead stream) counts as a quiet line by the clock.
    watchdog_s: float = 0.25


@dataclass
class Engines:
    """Built once per process and shared by every call."""

    transcriber: TranscriptionScheduler
    synthesizer: Synthesizer
    # Speech synthesis has its own threads: in asyncio's shared pool it queued behind
    # database calls that a partitioned database held for seconds.
    synth_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="tts")
    )


# Each transcript line as it is said: the live feed, and the store that keeps lines as they
# happen so that a crash loses none of them.
LineListener = Callable[[SegmentRecord], None]


@dataclass(frozen=True)
class CutOff:
    """What a barge-in stopped: the sentences not yet heard, and the whole answer (what an
    echo of the agent's own voice would say)."""

    unheard: list[str]
    agent_text: str


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
        on_line: LineListener | None = None,
        started_at: datetime | None = None,  # the stream's start: lines' times count from it
        recorder: StereoRecorder | None = None,
    ) -> None:
        self.call_sid, self.stream_sid = call_sid, stream_sid
        self.policy, self.engines = policy, engines
        self.config = config or SessionConfig()
        self._hang_up = hang_up
        self._on_line = on_line or (lambda _segment: None)
        self._jitter = JitterBuffer()
        self._pending_bytes = bytearray()
        self._vad = VoiceDetector(self.config.vad_aggressiveness)
        self._endpointer = Endpointer(self.config.endpointer)
        self.playback = Playback()
        self.recorder = recorder  # None: nothing of the call's audio reaches the disk
        self._speaker = Speaker(
            stream_sid, engines.synthesizer, send, self.playback, recorder, engines.synth_pool
        )
        self.caller_segments: list[SegmentRecord] = []
        self.turns: list[TurnRecord] = []
        self._answer_task: asyncio.Task[None] | None = None
        self._answer_speaking = False
        # Caller audio not yet committed to the record: the turn being answered, which
        # becomes the start of the next turn if the caller goes on before we speak.
        self._uncommitted: SpeechEnded | None = None
        self._carry: SpeechEnded | None = None
        # (end of the paused speech in media ms, its transcription started during the pause)
        self._speculation: tuple[int, asyncio.Future[tuple[str, float]]] | None = None
        self._last_voiced_wall = 0.0
        self._barged_in = False
        self._cut_off: CutOff | None = None
        self._quiet_ms = 0
        self._silence_prompts = 0
        self._last_media_wall = time.monotonic()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._keeping: set[asyncio.Task[None]] = set()  # words to store: finished, not cancelled
        self.transferred = False
        self.started_at = started_at or datetime.now(UTC)

    # ---- inbound -------------------------------------------------------------------

    async def start(self, opening: AsyncIterator[ReplyPart] | None = None) -> None:
        self._spawn(self._reply(opening or self.policy.greet(), None), speaks=True)
        self._spawn(self._watchdog())

    def on_media(self, chunk: int, payload: bytes) -> None:
        self._last_media_wall = time.monotonic()
        for ready in self._jitter.push(chunk, payload):
            self._pending_bytes += ready
        while len(self._pending_bytes) >= g711.FRAME_BYTES:
            frame = g711.decode(bytes(self._pending_bytes[: g711.FRAME_BYTES]))
            del self._pending_bytes[: g711.FRAME_BYTES]
            self._on_frame(frame)

    @property
    def media_ms(self) -> int:
        """Caller audio taken in so far, in media time."""
        return self._endpointer.now_ms

    def on_mark(self, name: str) -> None:
        self.playback.on_mark(name)

    def _on_frame(self, frame: np.ndarray) -> None:
        if self.recorder is not None:
            self.recorder.caller_frame(frame)
        voiced = self._vad.is_speech(frame)
        event = self._endpointer.push(frame, voiced)
        if voiced and self._endpointer.in_speech:
            self._last_voiced_wall = time.perf_counter()
        if isinstance(event, SpeechStarted):
            self._on_speech_started()
        elif isinstance(event, SpeechPaused):
            self._speculate(event)
        elif isinstance(event, SpeechResumed):
            self._drop_speculation()
        elif isinstance(event, SpeechEnded):
            self._on_speech_ended(event)
        if (
            self._endpointer.in_speech
            and not self._barged_in
            and self.playback.speaking
            and self._endpointer.voiced_ms >= self.config.barge_in_ms
        ):
            self._barge_in()
        self._watch_silence()

    def _on_speech_started(self) -> None:
        self._quiet_ms, self._silence_prompts = 0, 0
        task = self._answer_task
        if task and not task.done() and not self._answer_speaking:
            # The caller went on before we answered: drop that answer, keep the audio.
            task.cancel()
            self._carry = self._uncommitted

    def _speculate(self, pause: SpeechPaused) -> None:
        """The caller paused: transcribe now, while the hangover runs. If the words read as
        a finished sentence the hangover shrinks; mid-number or mid-address it grows."""
        self._drop_speculation()
        if self._closing or self._carry is not None:
            return
        task = asyncio.ensure_future(self.engines.transcriber.transcribe(pause.audio, final=False))
        self._speculation = (pause.end_ms, task)
        task.add_done_callback(lambda t: self._adapt_hangover(pause.end_ms, t))

    def _adapt_hangover(self, end_ms: int, task: asyncio.Future[tuple[str, float]]) -> None:
        current = self._speculation
        if task.cancelled() or task.exception() is not None or current is None:
            return
        if current[0] != end_ms or not self._endpointer.in_speech:
            return
        kind = hangover_for(task.result()[0])
        config = self.config
        self._endpointer.hangover_ms = {
            "short": config.short_hangover_ms,
            "usual": config.endpointer.hangover_ms,
            "long": config.long_hangover_ms,
        }[kind]

    def _drop_speculation(self) -> None:
        if self._speculation is not None:
            self._speculation[1].cancel()
            self._speculation = None

    def _on_speech_ended(self, event: SpeechEnded) -> None:
        barged, self._barged_in = self._barged_in, False
        cut_off, self._cut_off = (self._cut_off if barged else None), None
        speculation, self._speculation = self._speculation, None
        if self._closing or (self.playback.speaking and not barged):
            if speculation:
                speculation[1].cancel()
            return  # a cough or "uh-huh" under the agent's speech: not a turn
        early = None
        if speculation and speculation[0] == event.end_ms and self._carry is None:
            early = speculation[1]  # same audio: its transcript is this turn's
        elif speculation:
            speculation[1].cancel()
        carry, self._carry = self._carry, None
        if carry is not None and event.end_ms - carry.start_ms > self.config.endpointer.max_turn_ms:
            # A caller who keeps going on (or a stream flooding speech) makes no endless turn:
            # one transcription holds a shared worker, so no turn grows past max_turn_ms.
            self._keeping.add(self._spawn(self._keep_words(carry)))
            carry = None
        event = _joined(carry, event)
        self._uncommitted = event
        self._answer_speaking = False
        turn = TurnRecord(index=len(self.turns) + 1)
        self._answer_task = self._spawn(
            self._answer(event, self._last_voiced_wall, turn, early, cut_off)
        )

    def _barge_in(self) -> None:
        if self._closing:
            return  # the goodbye or the transfer line is said in full
        self._barged_in = True
        log.info("call %s: barge-in", self.call_sid)
        last = self.playback.utterances[-1].sentences if self.playback.utterances else []
        self._cut_off = CutOff(self.playback.unheard(), " ".join(last))
        for task in list(self._tasks):
            if getattr(task, "speaks", False) or task is self._answer_task:
                task.cancel()
        self.playback.interrupt()
        if self.recorder is not None:
            self.recorder.clear()
        self._spawn(self._speaker.send(wire.clear(self.stream_sid)))

    async def _watchdog(self) -> None:
        """What frames cannot tell: a stream that sends nothing is still a quiet line (so
        the caller is prompted and the call ends), and marks Twilio never echoes stop
        holding the agent in 'speaking' once their audio must have played."""
        period = self.config.watchdog_s
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if self.playback.expire(now):
                log.warning("call %s: marks not echoed in time; taken as played", self.call_sid)
            if now - self._last_media_wall >= 2 * period:  # frames stopped: the clock counts
                self._watch_silence(int(period * 1000))

    def _watch_silence(self, elapsed_ms: int = FRAME_MS) -> None:
        busy = (
            self._endpointer.in_speech
            or self.playback.speaking
            or (self._answer_task is not None and not self._answer_task.done())
            or self._closing
        )
        self._quiet_ms = 0 if busy else self._quiet_ms + elapsed_ms
        if self._quiet_ms >= self.config.silence_prompt_ms:
            self._quiet_ms = 0
            prompts, self._silence_prompts = self._silence_prompts, self._silence_prompts + 1
            self._spawn(self._reply(self.policy.on_silence(prompts), None), speaks=True)

    # ---- answering -----------------------------------------------------------------

    async def _answer(
        self,
        speech: SpeechEnded,
        speech_end: float,
        turn: TurnRecord,
        early: asyncio.Future[tuple[str, float]] | None = None,
        cut_off: CutOff | None = None,
    ) -> None:
        endpointed = time.perf_counter()
        turn.endpoint_ms = _ms(speech_end, endpointed)
        if early is not None:
            # Started during the hangover: only what is left of it delays the answer.
            text, _ = await early
            turn.transcribe_ms = _ms(endpointed, time.perf_counter())
        else:
            text, turn.transcribe_ms = await self.engines.transcriber.transcribe(speech.audio)
        if not text:
            self._uncommitted = None
            return  # noise that looked like speech; keep listening
        if cut_off is not None and await self._carry_on(cut_off, text, speech):
            return
        asked = time.perf_counter()

        def commit() -> None:
            # From the first sound of the answer on, the caller's words are on the record.
            self._answer_speaking = True
            self._uncommitted = None
            self.turns.append(turn)
            self._add_caller_line(SegmentRecord("caller", text, speech.start_ms, speech.end_ms))

        spoken = await self._reply(self.policy.respond(text), commit)
        t = spoken.timing
        if t.first_frame is not None:
            turn.answered = True
            turn.policy_ms = _ms(asked, t.first_text or asked)
            turn.tts_ms = _ms(t.synth_started or asked, t.first_audio or asked)
            turn.send_ms = _ms(t.first_audio or asked, t.first_frame)
            turn.latency_ms = _ms(speech_end, t.first_frame)
        elif not self._answer_speaking:
            commit()  # the policy chose silence (or failed): the words still count

    async def _keep_words(self, speech: SpeechEnded) -> None:
        """Words the caller said that will not be answered as a turn still go on the record."""
        text, _ = await self.engines.transcriber.transcribe(speech.audio)
        if text:
            self._add_caller_line(SegmentRecord("caller", text, speech.start_ms, speech.end_ms))

    def _add_caller_line(self, segment: SegmentRecord) -> None:
        self.caller_segments.append(segment)
        self._on_line(segment)

    async def _carry_on(self, cut_off: CutOff, text: str, speech: SpeechEnded) -> bool:
        """After a barge-in that was the agent's own echo, or the caller just listening
        ("uh-huh" while no question was left unsaid): say the rest instead of answering."""
        echo = is_echo(text, cut_off.agent_text)
        # "Yes" said over a question still playing is its answer, not listening.
        cut = cut_off.unheard[0] if cut_off.unheard else ""
        listening = bool(cut) and not cut.rstrip().endswith("?") and is_backchannel(text)
        if not echo and not listening:
            return False
        self._uncommitted = None
        if not echo:  # the caller's words are on the record; an echo is not the caller
            self._add_caller_line(SegmentRecord("caller", text, speech.start_ms, speech.end_ms))
        log.info("call %s: %s, carrying on", self.call_sid, "echo" if echo else "backchannel")
        if cut_off.unheard:
            await self._reply(_said(" ".join(cut_off.unheard)), None)
        return True

    async def _reply(
        self, parts: AsyncIterator[ReplyPart], before_first_audio: Callable[[], None] | None
    ) -> Spoken:
        task = asyncio.current_task()
        task.speaks = True  # type: ignore[union-attr]  # barge-in cancels speaking tasks
        spoken = await self._speaker.say(parts, self._endpointer.now_ms, before_first_audio)
        if spoken.said_anything:
            self._on_line(self.playback.utterances[-1].segment())
        if spoken.control is not None:
            self._closing = True
            task.speaks = False  # type: ignore[union-attr]  # the last words are not cut
            await self.playback.idle.wait()
            self.transferred = isinstance(spoken.control, Transfer)
            await self._hang_up()
        return spoken

    def _spawn(self, coro: Awaitable, speaks: bool = False) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.speaks = speaks  # type: ignore[attr-defined]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._keeping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: task failed", self.call_sid, exc_info=task.exception())

    # ---- the end -------------------------------------------------------------------

    async def finish(self, bad_messages: int) -> FinishedCall:
        """Stop everything and return the record. A caller cut off mid-sentence is still
        transcribed: the last words of a call are often the important ones."""
        self._drop_speculation()
        for task in self._tasks - self._keeping:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ready in self._jitter.flush():
            self._pending_bytes += ready
        await self._close_recorder()
        last = _joined(self._carry or self._uncommitted, self._endpointer.flush())
        if last is not None and len(last.audio):
            with contextlib.suppress(Exception):
                text, _ = await self.engines.transcriber.transcribe(last.audio)
                if text:
                    self.caller_segments.append(
                        SegmentRecord("caller", text, last.start_ms, last.end_ms)
                    )
        segments = sorted(self.caller_segments + self.playback.segments(), key=lambda s: s.start_ms)
        return FinishedCall(
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            stream_started_at=self.started_at,
            ended_at=datetime.now(UTC),
            outcome=await self._outcome(),
            bad_messages=bad_messages,
            segments=segments,
            turns=self.turns,
        )

    async def _outcome(self) -> str:
        """What came of the call. A caller who told us something and hung up before a
        booking, handoff or message gets a message now, so someone calls back."""
        lines = [s.text for s in self.caller_segments]
        try:
            return await asyncio.to_thread(self.policy.tools.finish_call, lines)
        except Exception:
            log.exception("call %s: could not settle the outcome", self.call_sid)
            return self.policy.tools.facts.outcome(caller_spoke=bool(lines))

    async def _close_recorder(self) -> None:
        """The last frames the jitter buffer held go on the record too; then it is sealed.
        Agent audio still queued at Twilio when the stream ended was not heard: dropped."""
        if self.recorder is None:
            return
        try:
            tail = self._pending_bytes[
                : len(self._pending_bytes) // g711.FRAME_BYTES * g711.FRAME_BYTES
            ]
            if tail:
                self.recorder.caller_frame(g711.decode(bytes(tail)))
            await asyncio.to_thread(self.recorder.close)
        except Exception:
            log.exception("call %s: could not close the recording", self.call_sid)


def _joined(first: SpeechEnded | None, then: SpeechEnded | None) -> SpeechEnded | None:
    """One turn from two pieces the caller meant as one (a pause we took for an end)."""
    if first is None or then is None:
        return then or first
    return SpeechEnded(first.start_ms, then.end_ms, np.concatenate([first.audio, then.audio]))


async def _said(text: str) -> AsyncIterator[ReplyPart]:
    yield Speak(text)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
