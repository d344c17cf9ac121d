"""The call core with no Twilio at all: a fake line (an AudioPort) that plays, marks, clears
and hangs up, and acknowledges marks as a phone line does once their audio has played;
the caller's audio (fixture WAVs, mu-law) handed in as plain calls. What a caller would
notice: the greeting, an answer to their words, the agent stopping when talked over, the
goodbye heard in full before the line closes, and the record of it all."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable

import numpy as np

from media import g711
from tests.conftest import MANIFEST, ROOT
from tests.scripted import ScriptedTranscriber
from tests.test_session import Echo, Explainer, Feeder, Tone, speech
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.call.ports import AudioPort
from voice_agent.call.session import CallSession, Engines
from voice_agent.call.state import LEGAL, CallState, CallStates

LIMIT_S = 30.0  # generous: every wait here polls for what must happen, and ends early


class FakeLine:
    """A phone line as the core sees it. Audio plays at once: each mark comes back on the
    next turn of the event loop. With `playing` False the audio stays "in the caller's ear":
    marks are held until release(), and a clear() returns them unheard (as Twilio does)."""

    def __init__(self) -> None:
        self.session: CallSession | None = None
        self.calls: list[tuple[str, object]] = []  # ("play", frames) ("mark", name) ...
        self.playing = True
        self.held: list[str] = []

    async def play(self, frames: list[bytes]) -> None:
        assert frames and all(len(f) == 160 for f in frames), "20 ms mu-law frames"
        self.calls.append(("play", len(frames)))

    async def mark(self, name: str) -> None:
        self.calls.append(("mark", name))
        if self.playing:
            self._ack([name])
        else:
            self.held.append(name)

    async def clear(self) -> None:
        self.calls.append(("clear", None))
        self.release()

    async def hang_up(self) -> None:
        self.calls.append(("hang_up", None))

    def release(self, *names: str) -> None:
        """Marks held so far come back (`names`: only those)."""
        back = [n for n in self.held if not names or n in names]
        self.held = [n for n in self.held if n not in back]
        self._ack(back)

    def _ack(self, names: list[str]) -> None:
        assert self.session is not None
        for name in names:
            asyncio.get_running_loop().call_soon(self.session.on_mark, name)

    def marks(self) -> list[str]:
        return [str(arg) for kind, arg in self.calls if kind == "mark"]

    def count(self, kind: str) -> int:
        return sum(k == kind for k, _ in self.calls)

    def frames_before(self, mark: str) -> int:
        """Frames played before the mark `mark` was sent (since the previous mark)."""
        at = self.calls.index(("mark", mark))
        frames = 0
        for kind, arg in reversed(self.calls[:at]):
            if kind == "mark":
                break
            if kind == "play":
                frames += int(arg)  # type: ignore[call-overload]
        return frames


def as_port(line: FakeLine) -> AudioPort:
    return line  # the fake is an AudioPort as the type checker sees it


async def until(what: str, done: Callable[[], bool], line: FakeLine) -> None:
    for _ in range(int(LIMIT_S / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}; the line saw {line.calls[-12:]}")


def text_of(name: str) -> str:
    return MANIFEST["turns"][name]["text"]


def call(
    policy: Echo, synthesizer: object, *turns: str
) -> tuple[CallSession, FakeLine, TranscriptionScheduler]:
    """A session on a fake line, hearing the words of the fixture turns `turns`."""
    transcriber = ScriptedTranscriber({name: text_of(name) for name in turns})
    scheduler = TranscriptionScheduler(transcriber)
    line = FakeLine()
    engines = Engines(scheduler, synthesizer)  # type: ignore[arg-type]
    session = CallSession(call_sid="CA-core", policy=policy, engines=engines, port=as_port(line))
    line.session = session
    return session, line, scheduler


async def caller_says(feeder: Feeder, name: str) -> None:
    await feeder.silence(400)
    await feeder.feed(speech(name))
    await feeder.silence(1000)  # past any hangover: the turn has ended


async def test_a_call_greeted_answered_and_ended_with_its_goodbye_heard() -> None:
    policy = Echo()
    session, line, scheduler = call(policy, Tone(), "name-maria.wav", "goodbye.wav")
    feeder = Feeder(session)
    try:
        await session.start()
        await until("the greeting", lambda: "u1.end" in line.marks(), line)
        assert line.marks() == ["u1.s0", "u1.end"], "one sentence, then the answer's end"
        assert line.frames_before("u1.s0") == 10, "200 ms of greeting as 20 ms frames"
        await until("the greeting heard", lambda: not session.playback.speaking, line)
        assert session.state is CallState.LISTENING

        await caller_says(feeder, "name-maria.wav")
        await until("an answer", lambda: "u2.end" in line.marks(), line)
        assert policy.said == [text_of("name-maria.wav")]
        assert line.frames_before("u2.s0") > 0, "the answer was played"
        await until("back to listening", lambda: session.state is CallState.LISTENING, line)

        line.playing = False  # the goodbye stays in the caller's ear until released
        await caller_says(feeder, "goodbye.wav")
        await until("the goodbye said", lambda: session.state is CallState.CLOSING, line)
        assert line.count("hang_up") == 0, "hung up before the caller heard the goodbye"
        line.release()
        await until("the line closed", lambda: line.count("hang_up") == 1, line)
        assert line.calls[-1] == ("hang_up", None)
        record = await session.finish()
    finally:
        scheduler.close()
    assert session.state is CallState.ENDED and session.states.illegal == []
    said = [(s.speaker, s.text) for s in record.segments]
    assert said[0] == ("agent", "Hello.")
    assert ("caller", text_of("name-maria.wav")) in said
    assert ("agent", f"You said {text_of('name-maria.wav')}.") in said
    assert said[-1] == ("agent", "Bye.")
    assert not any(s.interrupted for s in record.segments)
    assert record.outcome == "answered" and record.call_sid == "CA-core"
    assert record.stream_sid is None, "the core knows no stream: that is the line's to give"
    assert [t.answered for t in record.turns] == [True] * len(record.turns)
    path = session.states.history
    assert path[:4] == [
        CallState.LISTENING,
        CallState.THINKING,
        CallState.ANSWERING,
        CallState.LISTENING,
    ]
    assert path[-2:] == [CallState.CLOSING, CallState.ENDED]


class SlowAfterFirst:
    """Tone(), but every sentence after the first waits for `gate`: the greeting is still
    being made when the caller talks over it."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.first: str | None = None

    def synthesize(self, text: str) -> np.ndarray:
        self.first = self.first or text
        if text != self.first:
            self.gate.wait(LIMIT_S)
        return Tone().synthesize(text)


async def test_talking_over_the_agent_clears_the_line_and_stops_its_speech() -> None:
    policy = Explainer()
    synthesizer = SlowAfterFirst()
    session, line, scheduler = call(policy, synthesizer, "name-maria.wav")
    feeder = Feeder(session)
    line.playing = False  # the greeting is playing while the caller talks
    try:
        await session.start()
        await until("the first sentence", lambda: "u1.s0" in line.marks(), line)
        line.release("u1.s0")  # ...and the caller has heard it
        await feeder.silence(400)
        await feeder.feed(speech("name-maria.wav"))
        await until("the line cleared", lambda: line.count("clear") == 1, line)
        synthesizer.gate.set()  # the greeting's next sentence could be made now
        line.playing = True
        await feeder.silence(1000)
        await until("an answer", lambda: "u2.end" in line.marks(), line)
        record = await session.finish()
    finally:
        synthesizer.gate.set()
        scheduler.close()
    assert not [m for m in line.marks() if m.startswith("u1.") and m != "u1.s0"], (
        "the greeting went on after the caller talked over it"
    )
    greeting = record.segments[0]
    assert greeting.speaker == "agent" and greeting.text == "Hello."
    assert greeting.interrupted and greeting.heard_text == "Hello."
    assert policy.said == [text_of("name-maria.wav")], "the caller's words were answered"
    said = [(s.speaker, s.text) for s in record.segments]
    assert said[1:] == [
        ("caller", text_of("name-maria.wav")),
        ("agent", f"You said {text_of('name-maria.wav')}."),
    ]
    assert record.outcome == "answered" and session.states.illegal == []


def test_the_state_table_flags_a_change_it_does_not_allow() -> None:
    states = CallStates("CA-table")
    states.to(CallState.THINKING)
    states.to(CallState.ANSWERING)
    states.to(CallState.LISTENING)
    assert states.illegal == []
    states.to(CallState.ANSWERING)  # an answer said without a turn to answer
    assert states.illegal == [(CallState.LISTENING, CallState.ANSWERING)]
    assert states.now is CallState.ANSWERING, "made all the same: a live call goes on"
    assert all(CallState.ENDED in LEGAL[s] for s in CallState if s is not CallState.ENDED)
    assert LEGAL[CallState.CLOSING] == {CallState.ENDED}, "nothing interrupts the last words"


def test_the_call_core_does_not_import_twilio() -> None:
    """Every module of voice_agent.call imports without the Twilio adapter (or FastAPI)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import voice_agent.call.session\n"
        "import voice_agent.call as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('voice_agent.call.' + m.name)\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.startswith(('voice_agent.twilio', 'fastapi', 'starlette')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"the call core imports {out.stdout.strip()}"


async def test_under_load_every_guess_is_dropped_and_every_turn_still_answered() -> None:
    """Speculative transcripts given up to keep finals on time (here: all of them) cost
    only speed: the caller is answered, with the words of the whole turn."""
    policy = Echo()
    transcriber = ScriptedTranscriber({n: text_of(n) for n in ("name-maria.wav", "goodbye.wav")})
    scheduler = TranscriptionScheduler(transcriber, stale_s=0)  # every guess is stale
    line = FakeLine()
    session = CallSession(
        call_sid="CA-load",
        policy=policy,
        engines=Engines(scheduler, Tone()),  # type: ignore[arg-type]
        port=as_port(line),
    )
    line.session = session
    feeder = Feeder(session)
    try:
        await session.start()
        await until("the greeting heard", lambda: not session.playback.speaking, line)
        await caller_says(feeder, "name-maria.wav")
        await until("an answer", lambda: "u2.end" in line.marks(), line)
        assert policy.said == [text_of("name-maria.wav")]
        # The pause's guess was given up, or (when the turn ended before a worker reached
        # it) became the final: no guess ran as one.
        assert scheduler.stats.dropped + scheduler.stats.promoted >= 1
        record = await session.finish()
        assert [s.text for s in record.segments if s.speaker == "caller"] == [
            text_of("name-maria.wav")
        ]
    finally:
        scheduler.close()


def hiss(ms: int, seed: int, dbfs: float = -45.0) -> bytes:
    """A phone line's hiss (300-3400 Hz) as mu-law: what the line carries between words."""
    rng = np.random.default_rng(seed)
    n = 8 * ms
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / 8000)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    noise = np.fft.irfft(spectrum, n)
    noise *= 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(noise**2))
    return g711.encode(noise.astype(np.int16))


async def test_on_a_hissing_line_a_turn_is_answered_once_and_hiss_alone_is_no_turn() -> None:
    policy = Echo()
    session, line, scheduler = call(policy, Tone(), "sink-clogged.wav")
    feeder = Feeder(session)
    words = g711.decode(speech("sink-clogged.wav")).astype(np.float64)
    words = words[: len(words) // 8 * 8]  # whole milliseconds, as hiss() makes them
    noisy = g711.encode(
        np.clip(words + g711.decode(hiss(len(words) // 8, seed=2)), -32768, 32767).astype(np.int16)
    )
    try:
        await session.start()
        await until("the greeting heard", lambda: not session.playback.speaking, line)
        await feeder.feed(hiss(3000, seed=1))
        await feeder.feed(noisy)
        await feeder.feed(hiss(4000, seed=3))
        await until("an answer", lambda: "u2.end" in line.marks(), line)
        await feeder.feed(hiss(3000, seed=4))  # and the line goes on hissing
        await until("back to listening", lambda: session.state is CallState.LISTENING, line)
        assert policy.said == [text_of("sink-clogged.wav")], "one turn, whole, no hiss turns"
        assert len(session.turns) == 1
    finally:
        scheduler.close()
