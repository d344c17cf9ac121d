"""Property-based fuzzing of the Media Streams parser and of the call session with random
message sequences: no exception escapes, and every call ends with a record."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media import g711
from storage.calls import FinishedCall
from tests.test_session import Echo, SentLog, Tone
from transcripts.heard import Heard
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.call.session import CallSession, Engines, SessionConfig
from voice_agent.twilio import protocol as wire

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENTS = st.sampled_from(["connected", "start", "media", "mark", "dtmf", "stop", "clear", "x"])


@st.composite
def near_messages(draw: st.DrawFn) -> str:
    """Twilio-shaped messages with fields missing, mistyped or out of range."""
    body: dict = {"event": draw(EVENTS), "streamSid": draw(st.text(max_size=8))}
    for key in draw(st.lists(st.sampled_from(["media", "mark", "dtmf", "start", "stop"]))):
        body[key] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "chunk": st.one_of(st.integers(), st.text(max_size=25)),
                    "timestamp": st.one_of(st.integers(), st.text(max_size=5)),
                    "payload": st.one_of(
                        st.text(max_size=30),
                        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
                    ),
                    "track": st.text(max_size=10),
                    "name": json_values,
                    "digit": json_values,
                    "callSid": json_values,
                    "customParameters": json_values,
                },
            )
        )
    return json.dumps(body)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200), st.binary(max_size=200), near_messages(), json_values.map(json.dumps)
    )
)
def test_the_parser_returns_a_message_or_a_protocol_error(frame: str | bytes) -> None:
    try:
        msg = wire.parse(frame)
    except wire.ProtocolError as exc:
        assert exc.kind  # counted per call under this name
        return
    assert isinstance(
        msg, wire.Connected | wire.Start | wire.MediaFrame | wire.Mark | wire.Dtmf | wire.Stop
    )


class Words:
    def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
        return Heard("a sink is clogged" if len(audio) > 1600 else "")


@st.composite
def call_events(draw: st.DrawFn) -> list[tuple]:
    """What a stream may deliver to the session: media with any chunk number and payload
    size, marks (known and unknown), loud or silent audio, and pauses."""
    kinds = st.one_of(
        st.tuples(
            st.just("media"),
            st.integers(-10, 10**18),
            st.sampled_from([0, 1, 80, 160, 161, 320, 4000]),
            st.booleans(),
        ),
        st.tuples(st.just("next"), st.integers(1, 60), st.booleans()),
        st.tuples(
            st.just("mark"), st.sampled_from(["u1.s0", "u1.end", "u2.s0", "u2.end", "x", ""])
        ),
        st.tuples(st.just("pause")),
    )
    return draw(st.lists(kinds, max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call_events())
def test_any_message_sequence_ends_with_a_stored_call(events: list[tuple]) -> None:
    record = asyncio.run(_drive(events))
    assert isinstance(record, FinishedCall)
    assert record.call_sid == "CA-fuzz"
    assert all(s.end_ms >= s.start_ms for s in record.segments)


async def _drive(events: list[tuple]) -> FinishedCall:
    scheduler = TranscriptionScheduler(Words())
    session = CallSession(
        call_sid="CA-fuzz",
        policy=Echo(),
        engines=Engines(scheduler, Tone()),
        port=SentLog([]),
        config=SessionConfig(silence_prompt_ms=400),
    )
    loud = (np.sin(np.arange(160) / 2) * 12000).astype(np.int16)
    voice, quiet = g711.encode(loud), bytes([0xFF]) * 160
    chunk = 0
    try:
        await session.start()
        for event in events:
            if event[0] == "media":
                _, number, size, speech = event
                payload = (voice if speech else quiet) * (size // 160 + 1)
                session.on_audio(number, payload[:size])
            elif event[0] == "next":
                for _ in range(event[1]):
                    chunk += 1
                    session.on_audio(chunk, voice if event[2] else quiet)
            elif event[0] == "mark":
                session.on_mark(event[1])
            else:
                await asyncio.sleep(0.01)
        record = await session.finish(bad_messages=0)
        assert session.states.illegal == [], "a state change the call's states do not allow"
        return record
    finally:
        scheduler.close()
