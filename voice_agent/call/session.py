"""One phone call, top to bottom: caller audio -> turns -> policy -> speech out.

The core knows the line only as an AudioPort (ports.py); the line drives it with plain
calls: on_audio, on_mark, on_dtmf, finish. States and their changes: state.py. Whisper and
piper run in worker threads; per frame, the loop does a table lookup and a webrtcvad call.

    on_audio -> CallerAudio: jitter -> mu-law decode -> VAD -> endpointer
        SpeechStarted while THINKING or RESUMING -> drop that answer, keep the audio
        voiced long enough while the agent talks -> barge-in: port.clear(), speech cancelled
        SpeechPaused -> transcribe early (Hearing): the hangover fits the words
        SpeechEnded  -> THINKING: transcribe (shared pool) -> policy.respond -> ANSWERING:
            Speaker, sentence by sentence -> port.play, port.mark (an echo or an "uh-huh"
            that cut the agent off -> RESUMING: the rest is said)
        a quiet line after the agent spoke (QuietLine) -> policy.on_silence
    on_dtmf -> keypad entries, answered as turns; on_mark -> Playback: what was heard
    recorder (only when the business records calls): inbound frames and sentences sent on
        one stereo timeline; barge-in clears what the caller never heard
    EndCall / Transfer said -> CLOSING -> port.hang_up() once the last words were heard
    finish() -> ENDED: the record, with the outcome policy.finish_call settles
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from media.recorder import StereoRecorder
from media.vad import SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted, VadEvent
from routing.acts import EndCall, ReplyPart, Speak, Transfer
from routing.policy import Policy
from storage.calls import FinishedCall, SegmentRecord, TurnRecord
from transcripts.backchannel import carries_on
from transcripts.heard import Heard
from transcripts.scheduler import SpeculationDropped
from voice_agent.call.config import Engines, LineListener, SessionConfig
from voice_agent.call.hearing import Hearing
from voice_agent.call.inbound import CallerAudio, joined
from voice_agent.call.keypad import KeypadEntry
from voice_agent.call.playback import CutOff, Playback
from voice_agent.call.ports import AudioPort
from voice_agent.call.quiet_line import QuietLine
from voice_agent.call.speaker import Speaker, Spoken
from voice_agent.call.state import CallState, CallStates

__all__ = ["CallSession", "Engines", "LineListener", "SessionConfig"]

log = logging.getLogger(__name__)


class CallSession:
    def __init__(
        self,
        *,
        call_sid: str,
        policy: Policy,
        engines: Engines,
        port: AudioPort,
        config: SessionConfig | None = None,
        on_line: LineListener | None = None,
        started_at: datetime | None = None,  # the stream's start: lines' times count from it
        recorder: StereoRecorder | None = None,
        vocabulary: str | None = None,  # words this business's callers say (a Whisper prompt)
    ) -> None:
        self.call_sid = call_sid
        self.policy, self.engines = policy, engines
        self.config = config or SessionConfig()
        self._port = port
        self._on_line = on_line or (lambda _segment: None)
        self.recorder = recorder  # None: nothing of the call's audio reaches the disk
        c = self.config
        self._caller = CallerAudio(c.vad_aggressiveness, c.endpointer, recorder, c.vad_gate_db)
        self.playback = Playback()
        self._speaker = Speaker(
            engines.synthesizer, port, self.playback, recorder, engines.synth_pool
        )
        self._hearing = Hearing(engines.transcriber, self._caller, self.config, vocabulary)
        self._state = CallStates(call_sid)
        self.caller_segments: list[SegmentRecord] = []
        self.turns: list[TurnRecord] = []
        self._answer_task: asyncio.Task[None] | None = None  # answering the caller's last turn
        self._speaking: set[asyncio.Task[Any]] = set()  # what is being said: barge-in stops it
        # Caller audio not yet committed to the record: the turn being answered, which
        # becomes the start of the next turn if the caller goes on before we speak.
        self._uncommitted: SpeechEnded | None = None
        self._carry: SpeechEnded | None = None
        self._cut_off: CutOff | None = None  # the barge-in of the caller's current speech
        self._quiet = QuietLine(
            call_sid,
            self.config.silence_prompt_ms,
            self.config.watchdog_s,
            self.playback,
            busy=lambda: (
                self._caller.in_speech
                or self.playback.speaking
                or self._state.now is not CallState.LISTENING
            ),
            prompt=lambda prompts: self._speak(self.policy.on_silence(prompts)),
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keeping: set[asyncio.Task[Any]] = set()  # words to store: finished, not cancelled
        self.transferred = False
        self.started_at = started_at or datetime.now(UTC)
        self._keypad = KeypadEntry(self.config.keypad_gap_s, self._keys_done)

    @property
    def state(self) -> CallState:
        return self._state.now

    @property
    def states(self) -> CallStates:
        """The state, the states the call went through, and any change that was not legal."""
        return self._state

    @property
    def media_ms(self) -> int:
        """Caller audio taken in so far, in media time."""
        return self._caller.now_ms

    # ---- inbound -------------------------------------------------------------------

    async def start(self, opening: AsyncIterator[ReplyPart] | None = None) -> None:
        self._speak(opening or self.policy.greet())
        self._spawn(self._quiet.watchdog())

    def on_audio(self, chunk: int, payload: bytes) -> None:
        """Caller audio: mu-law 8 kHz, numbered by the line (in order, normally 20 ms each)."""
        self._quiet.media()
        for event in self._caller.frames(chunk, payload):
            self._on_frame(event)

    def on_mark(self, name: str) -> None:
        """The line has played everything queued before the mark `name`."""
        self.playback.on_mark(name)

    def _on_frame(self, event: VadEvent | None) -> None:
        if isinstance(event, SpeechStarted):
            self._on_speech_started()
        elif isinstance(event, SpeechPaused):
            self._hearing.early.drop()
            if not self._state.closing and self._carry is None:
                self._hearing.paused(event)
        elif isinstance(event, SpeechResumed):
            self._hearing.early.drop()
        elif isinstance(event, SpeechEnded):
            self._on_speech_ended(event)
        if (
            self._caller.in_speech
            and self._cut_off is None
            and self.playback.speaking
            and self._caller.voiced_ms >= self.config.barge_in_ms
        ):
            self._barge_in()
        self._quiet.tick()

    def _on_speech_started(self) -> None:
        self._quiet.caller_active()
        if self._state.droppable:
            # The caller went on before we answered: drop that answer, keep the audio.
            self._stop_answer()
            self._carry = self._uncommitted

    def _on_speech_ended(self, event: SpeechEnded) -> None:
        cut_off, self._cut_off = self._cut_off, None
        if self._state.closing or (self.playback.speaking and cut_off is None):
            self._hearing.early.drop()
            return  # a cough or "uh-huh" under the agent's speech: not a turn
        # The transcript started in the pause is this turn's if it is of the same audio.
        early = self._hearing.early.take(event.end_ms, usable=self._carry is None)
        carry, self._carry = self._carry, None
        if carry is not None and event.end_ms - carry.start_ms > self.config.endpointer.max_turn_ms:
            # A caller who keeps going on (or a stream flooding speech) makes no endless turn:
            # one transcription holds a shared worker, so no turn grows past max_turn_ms.
            self._keeping.add(self._spawn(self._keep_words(carry)))
            carry = None
        speech = joined(carry, event)
        self._uncommitted = speech
        turn = TurnRecord(index=len(self.turns) + 1, hangover_ms=event.hangover_ms)
        self._state.to(CallState.THINKING)
        self._answer_task = self._spawn(
            self._then_listen(
                self._answer(speech, self._caller.last_voiced_wall, turn, early, cut_off)
            )
        )

    def _barge_in(self) -> None:
        if self._state.closing:
            return  # the goodbye or the transfer line is said in full
        log.info("call %s: barge-in", self.call_sid)
        self._cut_off = self.playback.cut_off()
        for task in list(self._speaking):
            task.cancel()
        self._stop_answer()
        self.playback.interrupt()
        if self.recorder is not None:
            self.recorder.clear()
        self._spawn(self._speaker.clear())

    def _stop_answer(self) -> None:
        """The answer under way is dropped: the caller went on, or talked over it."""
        if self._answer_task is not None:
            self._answer_task.cancel()
            self._answer_task = None
        if self._state.answering:
            self._state.to(CallState.LISTENING)

    # ---- keypad --------------------------------------------------------------------

    def on_dtmf(self, key: str) -> None:
        """A key pressed: entries (keypad.py) are answered as turns. A key pressed while the
        agent talks stops it, as in any phone menu."""
        if self._state.closing:
            return
        self._quiet.caller_active()
        if self.playback.speaking:
            self._barge_in()
            self._cut_off = None  # keys are not speech: nothing to tell apart from an echo
        self._keypad.press(key)

    def _keys_done(self, keys: str) -> None:
        if not self._state.closing:
            self._stop_answer()  # an answer to what was said before is replaced
            self._state.to(CallState.THINKING)
            self._answer_task = self._spawn(self._then_listen(self._answer_keys(keys)))

    async def _answer_keys(self, keys: str) -> None:
        entered, at = time.perf_counter(), self._caller.now_ms
        turn = TurnRecord(index=len(self.turns) + 1)
        self.turns.append(turn)
        self._add_caller_line(SegmentRecord("caller", f"(keypad) {keys}", at, at))
        keyed = Heard(keys, keyed=True)
        spoken = await self._reply(self.policy.respond(keys, keyed), self._answering)
        if spoken.timing.first_frame is not None:
            turn.answered = True
            turn.latency_ms = _ms(entered, spoken.timing.first_frame)

    # ---- answering -----------------------------------------------------------------

    async def _then_listen(self, answer: Coroutine[Any, Any, None]) -> None:
        try:
            await answer
        finally:  # said, noise, failed or cancelled: back to listening, unless replaced
            if self._answer_task is asyncio.current_task() and self._state.answering:
                self._state.to(CallState.LISTENING)

    async def _answer(
        self,
        speech: SpeechEnded,
        speech_end: float,
        turn: TurnRecord,
        early: asyncio.Future[tuple[Heard, float]] | None,
        cut_off: CutOff | None,
    ) -> None:
        endpointed = time.perf_counter()
        turn.endpoint_ms = _ms(speech_end, endpointed)
        heard: Heard | None = None
        if early is not None:
            # Started during the hangover: only what is left of it delays the answer.
            with contextlib.suppress(SpeculationDropped):
                heard, _ = await early
            turn.transcribe_ms = _ms(endpointed, time.perf_counter())
        if heard is None:
            heard = await self._hearing.transcribe(speech)
            turn.transcribe_ms = _ms(endpointed, time.perf_counter())
        text = heard.text
        if not text:
            self._uncommitted = None
            return  # noise that looked like speech; keep listening
        if cut_off is not None and await self._carry_on(cut_off, text, speech):
            return
        asked = time.perf_counter()
        committed = False

        def commit() -> None:
            nonlocal committed
            committed = True
            self._uncommitted = None
            self.turns.append(turn)
            self._add_caller_line(SegmentRecord("caller", text, speech.start_ms, speech.end_ms))

        def first_audio() -> None:
            self._answering()
            commit()  # from the first sound of the answer on, the words are on the record

        spoken = await self._reply(self.policy.respond(text, heard), first_audio)
        t = spoken.timing
        if t.first_frame is not None:
            turn.answered = True
            turn.policy_ms = _ms(asked, t.first_text or asked)
            turn.tts_ms = _ms(t.synth_started or asked, t.first_audio or asked)
            turn.send_ms = _ms(t.first_audio or asked, t.first_frame)
            turn.latency_ms = _ms(speech_end, t.first_frame)
        elif not committed:
            commit()  # the policy chose silence (or failed): the words still count

    def _answering(self) -> None:
        if self._state.now is CallState.THINKING:
            self._state.to(CallState.ANSWERING)

    async def _keep_words(self, speech: SpeechEnded) -> None:
        """Words the caller said that will not be answered as a turn still go on the record."""
        if line := await self._hearing.line(speech):
            self._add_caller_line(line)

    def _add_caller_line(self, segment: SegmentRecord) -> None:
        self.caller_segments.append(segment)
        self._on_line(segment)

    async def _carry_on(self, cut_off: CutOff, text: str, speech: SpeechEnded) -> bool:
        """After a barge-in that was the agent's own echo, or the caller just listening
        ("uh-huh" while no question was left unsaid): say the rest instead of answering."""
        why = carries_on(text, cut_off.agent_text, cut_off.unheard)
        if why is None:
            return False
        echo = why == "echo"
        self._uncommitted = None
        if not echo:  # the caller's words are on the record; an echo is not the caller
            self._add_caller_line(SegmentRecord("caller", text, speech.start_ms, speech.end_ms))
        log.info("call %s: %s, carrying on", self.call_sid, why)
        if cut_off.unheard:
            if self._state.now is CallState.THINKING:
                self._state.to(CallState.RESUMING)
            await self._reply(_said(" ".join(cut_off.unheard)), None)
        return True

    # ---- speaking ------------------------------------------------------------------

    def wind_up(self, text: str) -> bool:
        """Say `text`, then close the line once it was heard (a worker draining past its
        bound); the call is stored as on any hang-up. False if it is already closing."""
        if self._state.closing or self._state.now is CallState.ENDED:
            return False
        for task in list(self._speaking):
            task.cancel()
        self._stop_answer()
        self._state.to(CallState.CLOSING)  # said in full: no barge-in, no new turn
        self._speak(_said(text, EndCall()))
        return True

    def _speak(self, parts: AsyncIterator[ReplyPart]) -> None:
        """The greeting or a prompt: said in a task of its own, which a barge-in stops."""
        self._speaking.add(self._spawn(self._reply(parts, None)))

    async def _reply(
        self, parts: AsyncIterator[ReplyPart], before_first_audio: Callable[[], None] | None
    ) -> Spoken:
        task = asyncio.current_task()
        assert task is not None
        self._speaking.add(task)  # an answer too is stopped by a barge-in
        spoken = await self._speaker.say(parts, self._caller.now_ms, before_first_audio)
        line = self.playback.last_segment() if spoken.said_anything else None
        if line is not None:
            self._hearing.last_said = line.text
            self._on_line(line)
        if spoken.control is not None:
            self._state.to(CallState.CLOSING)
            self._speaking.discard(task)  # the last words are not cut
            await self.playback.idle.wait()
            self.transferred = isinstance(spoken.control, Transfer)
            await self._port.hang_up()
        return spoken

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._keeping.discard(task)
        self._speaking.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: task failed", self.call_sid, exc_info=task.exception())

    # ---- the end -------------------------------------------------------------------

    async def finish(self, bad_messages: int = 0, stream_sid: str | None = None) -> FinishedCall:
        """Stop everything and return the record. A caller cut off mid-sentence is still
        transcribed: the last words of a call are often the important ones. The line's
        own facts (bad messages, the stream's id) go on the record as given."""
        self._state.to(CallState.ENDED)
        self._hearing.early.drop()
        if keys := self._keypad.close():  # keyed, then the caller hung up: still on record
            at = self._caller.now_ms
            self.caller_segments.append(SegmentRecord("caller", f"(keypad) {keys}", at, at))
        for task in self._tasks - self._keeping:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._caller.close_recording(self.call_sid)
        last = joined(self._carry or self._uncommitted, self._caller.last_turn())
        if line := await self._hearing.line(last):
            self.caller_segments.append(line)
        segments = sorted(self.caller_segments + self.playback.segments(), key=lambda s: s.start_ms)
        return FinishedCall(
            call_sid=self.call_sid,
            stream_sid=stream_sid,
            stream_started_at=self.started_at,
            ended_at=datetime.now(UTC),
            # What came of the call. A caller who told us something and hung up before a
            # booking, handoff or message gets a message now, so someone calls back.
            outcome=await self.policy.finish_call([s.text for s in self.caller_segments]),
            bad_messages=bad_messages,
            segments=segments,
            turns=self.turns,
        )


async def _said(text: str, *then: ReplyPart) -> AsyncIterator[ReplyPart]:
    for part in (Speak(text), *then):
        yield part


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
