"""The call session with fake engines in the same slots as the real ones: turn-taking
decisions, driven frame by frame without a network."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from media import g711
from media.wav import read_wav_phone
from routing.acts import EndCall, Speak
from routing.call_facts import CallFacts
from storage.calls import SegmentRecord
from tests.conftest import AUDIO
from transcripts.heard import Heard
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.call.session import CallSession, Engines
from voice_agent.call.state import CallState

SILENCE = bytes([0xFF]) * 160


class GatedTranscriber:
    """Returns what it was given (in samples) once the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.heard: list[int] = []

    def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
        self.heard.append(len(audio))
        self.gate.wait(10)
        return Heard(f"words {len(self.heard)}")


class Tone:
    def synthesize(self, text: str) -> np.ndarray:
        return (np.sin(np.arange(1600) / 3) * 8000).astype(np.int16)  # 200 ms per sentence


class Echo:
    """A policy that repeats the caller; "bye" ends the call."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.facts = CallFacts()

    async def greet(self):  # type: ignore[no-untyped-def]
        yield Speak("Hello.")

    async def respond(self, caller_text: str, heard=None):  # type: ignore[no-untyped-def]
        self.said.append(caller_text)
        if "bye" in caller_text.lower():
            yield Speak("Bye.")
            yield EndCall()
        else:
            yield Speak(f"You said {caller_text}.")

    async def on_silence(self, prompts: int):  # type: ignore[no-untyped-def]
        yield Speak("Still there?")

    async def finish_call(self, caller_lines: list[str]) -> str:
        return self.facts.outcome(caller_spoke=bool(caller_lines))


class SentLog:
    """The line, as the session's AudioPort: what was sent to it, in order, as events
    ({"event": "play"}, {"event": "mark", "name": ...}, {"event": "clear"},
    {"event": "hung_up"}) appended to `sent`. Marks are acknowledged by the test."""

    def __init__(self, sent: list[dict]) -> None:
        self.sent = sent

    async def play(self, frames: list[bytes]) -> None:
        self.sent.extend({"event": "play", "frame": frame} for frame in frames)

    async def mark(self, name: str) -> None:
        self.sent.append({"event": "mark", "name": name})

    async def clear(self) -> None:
        self.sent.append({"event": "clear"})

    async def hang_up(self) -> None:
        self.sent.append({"event": "hung_up"})


def make_session(stt: Any, policy: Echo | None = None) -> tuple[CallSession, list[dict], Echo]:
    sent: list[dict] = []
    policy = policy or Echo()
    engines = Engines(TranscriptionScheduler(stt), Tone())
    session = CallSession(call_sid="CA1", policy=policy, engines=engines, port=SentLog(sent))
    return session, sent, policy


class Feeder:
    def __init__(self, session: CallSession) -> None:
        self.session, self.chunk = session, 0

    async def feed(self, mulaw: bytes) -> None:
        for i in range(0, len(mulaw) - 159, 160):
            self.chunk += 1
            self.session.on_audio(self.chunk, mulaw[i : i + 160])
            await asyncio.sleep(0)

    async def silence(self, ms: int) -> None:
        await self.feed(SILENCE * (ms // 20))


def speech(name: str) -> bytes:
    return g711.encode(read_wav_phone(AUDIO / name))


async def settle(sent: list, predicate, limit_s: float = 10) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(limit_s / 0.01)):
        if predicate(sent):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened; sent: {[m['event'] for m in sent][-10:]}")


def answers_sent(sent: list[dict]) -> int:
    return sum(m["event"] == "mark" and m["name"].endswith(".end") for m in sent)


def echo_marks(session: CallSession, sent: list[dict]) -> None:
    for m in sent:
        if m["event"] == "mark":
            session.on_mark(m["name"])


async def test_caller_going_on_before_the_answer_merges_both_parts_into_one_turn() -> None:
    stt = GatedTranscriber()
    session, sent, policy = make_session(stt)
    await session.start()
    await settle(sent, lambda s: answers_sent(s) == 1)
    echo_marks(session, sent)
    feeder = Feeder(session)
    first, second = speech("name-maria.wav"), speech("address-oak.wav")
    await feeder.feed(first)
    await feeder.silence(600)  # the endpointer closes the turn; transcription is held
    await settle(stt.heard, lambda h: len(h) == 1)
    await feeder.feed(second)  # ...and the caller goes on before we could answer
    await feeder.silence(600)
    stt.gate.set()
    await settle(sent, lambda s: answers_sent(s) == 2)
    assert stt.heard[1] > stt.heard[0] + len(second) * 0.5, "second pass has both parts"
    assert policy.said == ["words 2"], "only the merged turn was answered"
    record = await session.finish(0)
    callers = [s for s in record.segments if s.speaker == "caller"]
    assert len(callers) == 1 and callers[0].start_ms < 1000
    assert record.outcome == "answered" and record.turns[0].answered
    path = " ".join(state.name for state in session.states.history)
    assert path == "LISTENING THINKING LISTENING THINKING ANSWERING LISTENING ENDED", (
        "the first answer was dropped when the caller went on"
    )


async def test_end_call_waits_until_the_goodbye_was_heard() -> None:
    stt = GatedTranscriber()
    stt.gate.set()
    session, sent, _policy = make_session(stt)
    stt_says_bye = "Goodbye"
    stt.transcribe = lambda audio, prompt=None, expect=None: Heard(stt_says_bye)  # type: ignore[method-assign]
    await session.start()
    await settle(sent, lambda s: answers_sent(s) == 1)
    echo_marks(session, sent)
    feeder = Feeder(session)
    await feeder.feed(speech("goodbye.wav"))
    await feeder.silence(600)
    await settle(sent, lambda s: answers_sent(s) == 2)
    await asyncio.sleep(0.05)
    assert not any(m["event"] == "hung_up" for m in sent), "hung up before the caller heard it"
    echo_marks(session, sent)
    await settle(sent, lambda s: s[-1]["event"] == "hung_up")
    record = await session.finish(0)
    assert record.segments[-1] == SegmentRecord(
        "agent", "Bye.", record.segments[-1].start_ms, record.segments[-1].end_ms
    )


# -- barge-in: a real interruption, the caller listening, or the agent's own echo ---------


class Scripted:
    """Hears whatever the test says the caller said."""

    def __init__(self, text: str) -> None:
        self.text = text

    def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
        return Heard(self.text)


class Explainer(Echo):
    async def greet(self):  # type: ignore[no-untyped-def]
        yield Speak("Hello. We fix pipes. We fix furnaces. How can I help?")


async def cut_in(heard: str, marks_back: int) -> tuple[CallSession, list[dict], Echo]:
    """The greeting is sent; `marks_back` of its sentences have played when the caller talks
    over it, and the transcriber then hears `heard`."""
    session, sent, policy = make_session(Scripted(heard), Explainer())
    await session.start()
    await settle(sent, lambda s: answers_sent(s) == 1)
    for i in range(marks_back):
        session.on_mark(f"u1.s{i}")
    feeder = Feeder(session)
    await feeder.feed(speech("name-maria.wav"))
    assert any(m["event"] == "clear" for m in sent), "the agent did not stop at once"
    await feeder.silence(700)
    await settle(sent, lambda s: answers_sent(s) == 2)
    echo_marks(session, sent)
    return session, sent, policy


def agent_lines(record) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.text for s in record.segments if s.speaker == "agent"]


async def test_uh_huh_over_the_agent_lets_it_carry_on() -> None:
    session, _sent, policy = await cut_in("Uh-huh.", marks_back=1)
    record = await session.finish(0)
    assert policy.said == [], "a backchannel is not a question to answer"
    assert CallState.RESUMING in session.states.history and not session.states.illegal
    greeting = record.segments[0]
    assert greeting.interrupted and greeting.heard_text == "Hello."
    assert [s.text for s in record.segments if s.speaker == "caller"] == ["Uh-huh."]
    assert agent_lines(record)[1] == "We fix pipes. We fix furnaces. How can I help?"


async def test_the_agents_own_echo_is_not_the_caller() -> None:
    session, _sent, policy = await cut_in("We fix pipes, we fix furnaces.", marks_back=1)
    record = await session.finish(0)
    assert policy.said == []
    assert not [s for s in record.segments if s.speaker == "caller"]
    assert agent_lines(record)[1] == "We fix pipes. We fix furnaces. How can I help?"


async def test_a_real_interruption_is_answered() -> None:
    session, _sent, policy = await cut_in("My sink is clogged.", marks_back=1)
    record = await session.finish(0)
    assert policy.said == ["My sink is clogged."]
    assert agent_lines(record)[1] == "You said My sink is clogged.."


async def test_yes_over_the_question_answers_it() -> None:
    session, _sent, policy = await cut_in("Yes.", marks_back=3)
    await session.finish(0)
    assert policy.said == ["Yes."], "'yes' over a question is its answer"
