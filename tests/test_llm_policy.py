"""LLMPolicy against a fake OpenAI server over real HTTP, with real ReceptionTools on SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from routing.acts import EndCall, ReplyPart, Speak, Transfer
from routing.llm import LLMPolicy
from routing.tools import SMS_CONSENT_WORDING, ReceptionTools
from storage.businesses import BusinessStore
from storage.calls import CallStore
from storage.db import make_engine, upgrade
from storage.models import Booking, ConsentRecord, Handoff, Message
from storage.reception import ReceptionStore
from tests import fake_openai
from tests.fake_openai import (
    Call,
    Drop,
    Error,
    FakeOpenAI,
    Garbage,
    Stall,
    Text,
    ToolCalls,
    free_port,
    tool_results,
)

# The fake server's fixtures, shared by the modules that talk to it.
openai_server, fake = fake_openai.openai_server, fake_openai.fake

CALL_SID = "CAtest"
CALLER = "+15555550123"
LINE = "+15550100200"
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("America/New_York"))
TUESDAY_9AM = "2026-12-01T09:00"
FALLBACK_TEXT = "Let me take your details the simple way."
GREETING = "Thanks for calling Bluebird Plumbing & HVAC. How can I help you today?"
BOOKING = {"name": "Jane Doe", "address": "12 Elm Street, Springfield",
           "problem": "clogged kitchen sink", "when": TUESDAY_9AM}  # fmt: skip


class FakeFallback:
    """The local policy's stand-in: one recognizable sentence."""

    def __init__(self, tools: ReceptionTools) -> None:
        self.tools = tools
        self.heard: list[str] = []

    async def greet(self) -> AsyncIterator[ReplyPart]:
        yield Speak("Fallback greeting.")

    async def respond(self, caller_text: str, heard=None) -> AsyncIterator[ReplyPart]:  # type: ignore[no-untyped-def]
        self.heard.append(caller_text)
        yield Speak(FALLBACK_TEXT)

    async def on_silence(self, prompts_so_far: int) -> AsyncIterator[ReplyPart]:
        yield Speak("Fallback silence.")


@pytest.fixture
def engine(tmp_path: Any) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)  # also seeds the demo business (id 1)
    yield engine
    engine.dispose()


@pytest.fixture
def tools(engine: Engine) -> ReceptionTools:
    profile = BusinessStore(engine).by_line(LINE)
    assert profile is not None
    CallStore(engine).open_call(CALL_SID, profile.id, CALLER, profile.line)
    return ReceptionTools(profile, CALL_SID, CALLER, ReceptionStore(engine),
                          clock=lambda: MONDAY_10AM)  # fmt: skip


@pytest.fixture
async def policy(fake: FakeOpenAI, tools: ReceptionTools) -> AsyncIterator[LLMPolicy]:
    client = fake.client()
    # Generous timeouts: a busy test machine must not turn a scripted reply into a fallback.
    # The stall tests shorten them on purpose.
    yield LLMPolicy(tools.profile, tools, client, "gpt-test", FakeFallback(tools),
                    first_token_timeout_s=10.0, turn_timeout_s=20.0,
                    stall_timeout_s=10.0)  # fmt: skip
    await client.close()


async def collect(parts: AsyncIterator[ReplyPart]) -> list[ReplyPart]:
    return [part async for part in parts]


def spoken(parts: list[ReplyPart]) -> str:
    return "".join(p.text for p in parts if isinstance(p, Speak))


def assert_well_formed(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool call is answered right after it, and only those are answered."""
    open_calls: list[str] = []
    for m in messages:
        if m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, f"tool result without its call: {m}"
            open_calls.remove(m["tool_call_id"])
            continue
        assert not open_calls, f"tool calls without results: {open_calls}"
        if m["role"] == "assistant":
            assert m.get("content") or m.get("tool_calls"), f"empty assistant message: {m}"
            open_calls = [c["id"] for c in m.get("tool_calls") or []]
            for c in m.get("tool_calls") or []:
                json.loads(c["function"]["arguments"])
    assert not open_calls, f"tool calls without results: {open_calls}"


async def wait_for(event: threading.Event) -> bool:
    for _ in range(500):
        if event.is_set():
            return True
        await asyncio.sleep(0.01)
    return False


def db_rows(engine: Engine, model: type) -> list[Any]:
    with Session(engine) as s:
        return list(s.scalars(select(model)))


# -- no model needed ----------------------------------------------------------------------


async def test_greeting_and_silence_need_no_model(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    assert await collect(policy.greet()) == [Speak(GREETING)]
    assert await collect(policy.on_silence(0)) == [Speak("Are you still there?")]
    goodbye = await collect(policy.on_silence(1))
    assert goodbye[-1] == EndCall()
    assert "Goodbye" in spoken(goodbye)
    assert policy.tools.facts.ended
    assert fake.requests == []


async def test_greeting_mentions_recording(fake: FakeOpenAI, tools: ReceptionTools) -> None:
    profile = dataclasses.replace(tools.profile, greeting="Bluebird, hi!", recording_enabled=True)
    async with fake.client() as client:
        policy = LLMPolicy(profile, tools, client, "m", FakeFallback(tools))
        assert await collect(policy.greet()) == [Speak("Bluebird, hi! This call may be recorded.")]


# -- what the model is sent ---------------------------------------------------------------


async def test_request_carries_prompt_tools_and_history(
    fake: FakeOpenAI, policy: LLMPolicy
) -> None:
    fake.script(Text("We serve Springfield."))
    await collect(policy.greet())
    await collect(policy.respond("Do you come to Springfield?"))

    (request,) = fake.requests
    assert request["model"] == "gpt-test"
    assert request["stream"] is True
    assert request["tool_choice"] == "auto"
    names = {t["function"]["name"] for t in request["tools"]}
    assert names == {"check_availability", "book_appointment", "transfer_to_dispatcher",
                     "take_message", "record_sms_consent", "end_call"}  # fmt: skip
    system = request["messages"][0]
    assert system["role"] == "system"
    for fact in ("Bluebird Plumbing & HVAC", "Monday, November 30, 2026, 10 AM",
                 "America/New_York", "every day 7 AM to 7 PM", "drain cleaning", "Springfield",
                 "burst pipe", "leave the house", "gas utility", "Dana Whitfield", CALLER,
                 SMS_CONSENT_WORDING, "no markdown"):  # fmt: skip
        assert fact in system["content"], fact
    assert request["messages"][1:] == [
        {"role": "assistant", "content": GREETING},
        {"role": "user", "content": "Do you come to Springfield?"},
    ]
    assert policy.history[-1] == {"role": "assistant", "content": "We serve Springfield."}


async def test_fake_server_also_answers_without_streaming(fake: FakeOpenAI) -> None:
    fake.script(Text("Hello", " there."), ToolCalls(Call("end_call")))
    client = fake.client()
    text = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    call = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "bye"}]
    )
    await client.close()
    assert text.choices[0].message.content == "Hello there."
    assert call.choices[0].message.tool_calls[0].function.name == "end_call"  # type: ignore[index, union-attr]


# -- streaming ----------------------------------------------------------------------------


async def test_text_is_spoken_while_it_streams(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    gate = threading.Event()  # the server holds the last piece until the test opens it
    pieces = ("Yes,", " we're open", " every day.", " Anything else?")
    fake.script(Text(*pieces, gate=gate))
    parts = policy.respond("Are you open on Sundays?")

    first = await anext(parts)
    assert first == Speak("Yes,")
    assert not fake.gate_timed_out  # it came while the server still held the reply back
    gate.set()
    rest = await collect(parts)

    assert [first, *rest] == [Speak(p) for p in pieces]
    assert policy.history[-1] == {"role": "assistant", "content": "".join(pieces)}


# -- tools --------------------------------------------------------------------------------


async def test_check_then_book(fake: FakeOpenAI, policy: LLMPolicy, engine: Engine) -> None:
    fake.script(
        ToolCalls(Call("check_availability", {"when": TUESDAY_9AM}), text="Let me check."),
        Text("Tomorrow at 9 AM is free.", " Shall I book it?"),
        ToolCalls(Call("book_appointment", BOOKING)),
        Text("You're booked for tomorrow at 9 AM.", " May we text you a confirmation?"),
    )
    first = await collect(policy.respond("Can someone come tomorrow at nine? My sink is clogged."))
    assert spoken(first) == "Let me check. Tomorrow at 9 AM is free. Shall I book it?"
    assert tool_results(fake.requests[1]) == [
        {"available": True, "time": "2026-12-01T09:00:00-05:00", "spoken": "tomorrow at 9 AM"}
    ]

    second = await collect(policy.respond("Yes please. Jane Doe, 12 Elm Street, Springfield."))
    assert spoken(second) == "You're booked for tomorrow at 9 AM. May we text you a confirmation?"
    assert all(isinstance(p, Speak) for p in second)
    (booking,) = db_rows(engine, Booking)
    assert booking.scheduled_for.replace(tzinfo=UTC) == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert (booking.name, booking.phone, booking.service) == ("Jane Doe", CALLER, "drain cleaning")
    assert booking.call_id is not None
    result = tool_results(fake.requests[3])[-1]
    assert result["booked"] is True and result["booking_id"] == booking.id
    for request in fake.requests:
        assert_well_formed(request["messages"])
    assert_well_formed(policy.history)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (Call("check_availability", '{"when": "2026-12-01T09'), "not valid JSON"),
        (Call("check_availability", {}), "missing 'when'"),
        (
            Call("check_availability", {"when": TUESDAY_9AM, "urgent": True}),
            "unknown field 'urgent'",
        ),
        (Call("check_availability", {"when": 9}), "'when' must be a string"),
        (Call("record_sms_consent", {"agreed": "yes"}), "'agreed' must be a boolean"),
        (Call("book_a_plumber", {"when": TUESDAY_9AM}), "Unknown tool 'book_a_plumber'"),
    ],
)
async def test_bad_arguments_get_an_error_the_model_can_fix(
    fake: FakeOpenAI, policy: LLMPolicy, bad: Call, error: str
) -> None:
    fixed = (Call("record_sms_consent", {"agreed": True}) if bad.name == "record_sms_consent"
             else Call("check_availability", {"when": TUESDAY_9AM}))  # fmt: skip
    fake.script(ToolCalls(bad), ToolCalls(fixed), Text("Done."))

    assert await collect(policy.respond("Tomorrow at nine, and yes, text me.")) == [Speak("Done.")]

    (rejected,) = tool_results(fake.requests[1])
    assert error in rejected["error"]
    answered = tool_results(fake.requests[2])[-1]
    assert "error" not in answered
    assert answered.get("available") is True or answered.get("sms_consent") is True
    assert_well_formed(fake.requests[2]["messages"])


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({**BOOKING, "address": "1180 Birch Avenue", "urgent": "gas smell at 1180 Birch"},
         "unknown field"),
        ('{"name": "Maria Lopez", "address": "1180 Birch Avenue", "problem": "gas sm',
         "invalid JSON"),
        ({**BOOKING, "name": None, "address": "1180 Birch Avenue", "when": 9},
         "missing field, wrong type"),
    ],
)  # fmt: skip
async def test_a_rejected_tool_call_logs_its_kind_not_the_values(
    fake: FakeOpenAI,
    policy: LLMPolicy,
    caplog: pytest.LogCaptureFixture,
    raw: Any,
    kind: str,
) -> None:
    fake.script(ToolCalls(Call("book_appointment", raw)), Text("Could you repeat that?"))
    with caplog.at_level(logging.DEBUG, logger="routing"):
        await collect(policy.respond("I smell gas at 1180 Birch Avenue, I'm Maria Lopez."))
    [line] = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert line == f"rejected a book_appointment call: {kind}"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for value in ("Birch", "Maria", "gas", "clogged", "2026-12-01"):
        assert value not in logged
    (rejected,) = tool_results(fake.requests[1])  # the model still learns what to fix
    assert "book_appointment" in rejected["error"]


async def test_sms_consent_is_recorded(fake: FakeOpenAI, policy: LLMPolicy, engine: Engine) -> None:
    fake.script(ToolCalls(Call("record_sms_consent", {"agreed": False})), Text("No problem."))
    assert await collect(policy.respond("No thanks, no texts.")) == [Speak("No problem.")]
    (consent,) = [c for c in db_rows(engine, ConsentRecord) if c.source == "call"]
    assert (consent.phone, consent.opt_in, consent.call_sid) == (CALLER, False, CALL_SID)


async def test_transfer_ends_with_transfer(
    fake: FakeOpenAI, policy: LLMPolicy, engine: Engine
) -> None:
    summary = "Jane at 12 Elm Street, water pouring from the ceiling"
    transfer = Call("transfer_to_dispatcher", {"reason": "burst pipe", "summary": summary})
    fake.script(ToolCalls(transfer, text="I'm connecting you with our on-call dispatcher now."))

    parts = await collect(policy.respond("A pipe burst, water is pouring through the ceiling!"))

    assert parts[-1] == Transfer()
    assert spoken(parts) == "I'm connecting you with our on-call dispatcher now."
    assert len(fake.requests) == 1  # no second model call before the handoff
    (handoff,) = db_rows(engine, Handoff)
    assert (handoff.reason, handoff.summary, handoff.dispatcher_name) == (
        "burst pipe", summary, "Dana Whitfield")  # fmt: skip
    assert_well_formed(policy.history)


async def test_silent_transfer_gets_a_spoken_line(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    fake.script(ToolCalls(Call("transfer_to_dispatcher", {"reason": "gas smell", "summary": "-"})))
    parts = await collect(policy.respond("I smell gas."))
    assert parts == [Speak("I'm connecting you with Dana Whitfield, our on-call dispatcher, now."),
                     Transfer()]  # fmt: skip


async def test_end_call(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    fake.script(ToolCalls(Call("end_call"), text="Thanks for calling, goodbye!"))
    parts = await collect(policy.respond("That's all, bye."))
    assert parts == [Speak("Thanks"), Speak(" for"), Speak(" calling,"), Speak(" goodbye!"),
                     EndCall()]  # fmt: skip
    assert policy.tools.facts.ended


async def test_two_calls_in_one_reply(fake: FakeOpenAI, policy: LLMPolicy, engine: Engine) -> None:
    message = {"name": "Bob", "reason": "billing question", "best_time": "after 5 PM"}
    fake.script(ToolCalls(Call("take_message", message), Call("end_call"),
                          text="I'll pass that on. Goodbye!"))  # fmt: skip
    parts = await collect(policy.respond("It's Bob, about my bill. Call me after five. Bye."))
    assert parts[-1] == EndCall()
    (row,) = db_rows(engine, Message)
    assert (row.name, row.callback_number, row.best_time) == ("Bob", CALLER, "after 5 PM")
    assert [m["role"] for m in policy.history[-3:]] == ["assistant", "tool", "tool"]


async def test_round_trips_per_turn_are_capped(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    check = ToolCalls(Call("check_availability", {"when": TUESDAY_9AM}))
    fake.script(check, check, check, check)  # a model that never stops calling tools
    assert await collect(policy.respond("Tomorrow?")) == [Speak(FALLBACK_TEXT)]
    assert [r["tool_choice"] for r in fake.requests] == ["auto", "auto", "auto", "none"]
    assert_well_formed(policy.history)


# -- failures fall back -------------------------------------------------------------------


async def test_http_500_falls_back_and_the_next_turn_uses_the_model(
    fake: FakeOpenAI, policy: LLMPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Error(500), Text("Sure, what's the address?"))
    with caplog.at_level(logging.WARNING, logger="routing.llm"):
        assert await collect(policy.respond("My drain is clogged.")) == [Speak(FALLBACK_TEXT)]
    assert len([r for r in caplog.records if r.name == "routing.llm"]) == 1
    assert policy.fallback.heard == ["My drain is clogged."]  # type: ignore[attr-defined]

    assert await collect(policy.respond("Jane Doe.")) == [Speak("Sure, what's the address?")]
    assert fake.requests[1]["messages"][-2:] == [
        {"role": "assistant", "content": FALLBACK_TEXT},  # the model keeps the context
        {"role": "user", "content": "Jane Doe."},
    ]


@pytest.mark.parametrize("before_headers", [False, True])
async def test_stall_falls_back(fake: FakeOpenAI, policy: LLMPolicy, before_headers: bool) -> None:
    policy.first_token_timeout_s, policy.turn_timeout_s = 0.3, 2.0
    fake.script(Stall(3.0, before_headers=before_headers), Text("Back."))
    assert await collect(policy.respond("Hello?")) == [Speak(FALLBACK_TEXT)]
    policy.first_token_timeout_s, policy.turn_timeout_s = 10.0, 20.0
    assert await collect(policy.respond("Still there?")) == [Speak("Back.")]
    assert_well_formed(fake.requests[1]["messages"])


@pytest.mark.parametrize("keepalive", [None, 0.5])
async def test_a_stall_after_the_first_words_is_cut_short(
    fake: FakeOpenAI, policy: LLMPolicy, keepalive: float | None
) -> None:
    """The model sends half a sentence and stops (maybe still sending empty chunks). The
    session holds those words until the sentence is complete, so the caller hears nothing:
    the stall bound between tokens (2 s) ends the wait, not the turn budget (20 s here), nor
    the server (30 s). The 10 s below is a safety net far above the bound, not a latency
    check."""
    policy.stall_timeout_s = 2.0
    fake.script(Stall(30.0, first=("Sure,", " I can"), keepalive=keepalive), Text("Back."))
    parts = await asyncio.wait_for(collect(policy.respond("Can someone come today?")), 10)
    assert parts == [Speak("Sure,"), Speak(" I can"), Speak("... "), Speak(FALLBACK_TEXT)]
    assert await wait_for(fake.aborted)  # the stalled stream was closed
    assert await collect(policy.respond("Hello?")) == [Speak("Back.")]
    assert_well_formed(fake.requests[1]["messages"])


async def test_a_stall_after_a_whole_sentence_is_cut_short_too(
    fake: FakeOpenAI, policy: LLMPolicy
) -> None:
    policy.stall_timeout_s = 2.0
    fake.script(Stall(30.0, first=("Sure thing.", " Let me")))
    parts = await asyncio.wait_for(collect(policy.respond("Can someone come today?")), 10)
    assert spoken(parts) == f"Sure thing. Let me... {FALLBACK_TEXT}"


async def test_dropped_stream_finishes_politely(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    fake.script(Drop("I can book", " you for"))
    parts = await collect(policy.respond("Can you come Tuesday?"))
    assert parts == [Speak("I can book"), Speak(" you for"), Speak("... "), Speak(FALLBACK_TEXT)]
    assert policy.history[-1] == {"role": "assistant",
                                  "content": f"I can book you for... {FALLBACK_TEXT}"}  # fmt: skip


async def test_malformed_stream_falls_back(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    fake.script(Garbage())
    assert await collect(policy.respond("Hi.")) == [Speak(FALLBACK_TEXT)]


async def test_connection_refused_falls_back(tools: ReceptionTools) -> None:
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="t",
                                max_retries=0)  # fmt: skip
    policy = LLMPolicy(tools.profile, tools, client, "m", FakeFallback(tools))
    assert await collect(policy.respond("Hi.")) == [Speak(FALLBACK_TEXT)]
    await client.close()


# -- barge-in -----------------------------------------------------------------------------


async def test_cancel_during_a_tool_call_leaves_no_dangling_call(
    fake: FakeOpenAI, policy: LLMPolicy, engine: Engine
) -> None:
    gate = threading.Event()  # never opened: the caller talks over the tool call
    fake.script(ToolCalls(Call("book_appointment", BOOKING), text="Let me book that.", gate=gate))
    heard: list[ReplyPart] = []
    started = asyncio.Event()

    async def listen() -> None:
        async for part in policy.respond("Book me for tomorrow at nine."):
            heard.append(part)
            if spoken(heard) == "Let me book that.":
                started.set()

    task = asyncio.create_task(listen())
    await asyncio.wait_for(started.wait(), 10)  # a safety net, not a latency check
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await wait_for(fake.aborted)  # the HTTP stream was closed
    assert db_rows(engine, Booking) == []
    fake.script(Text("Sorry, go ahead."))
    assert await collect(policy.respond("Wait, actually...")) == [Speak("Sorry, go ahead.")]
    messages = fake.requests[1]["messages"]
    assert_well_formed(messages)
    assert messages[-2:] == [{"role": "assistant", "content": "Let me book that."},
                             {"role": "user", "content": "Wait, actually..."}]  # fmt: skip


async def test_caller_barging_in_closes_the_stream(fake: FakeOpenAI, policy: LLMPolicy) -> None:
    gate = threading.Event()
    fake.script(Text("We can", " come", " tomorrow.", gate=gate))
    parts = policy.respond("When can you come?")
    assert await anext(parts) == Speak("We can")
    await parts.aclose()  # the session stops listening: the caller is talking

    assert await wait_for(fake.aborted)
    assert policy.history[-1] == {"role": "assistant", "content": "We can"}
    fake.script(Text("Okay."))
    assert await collect(policy.respond("Never mind.")) == [Speak("Okay.")]
    assert_well_formed(fake.requests[1]["messages"])


async def test_cancel_while_a_tool_runs_keeps_its_result(
    fake: FakeOpenAI, policy: LLMPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real = policy.tools.check_availability

    def slow_check(when: str) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return real(when)

    monkeypatch.setattr(policy.tools, "check_availability", slow_check)
    fake.script(ToolCalls(Call("check_availability", {"when": TUESDAY_9AM})))
    task = asyncio.create_task(collect(policy.respond("Tomorrow at nine?")))
    assert await wait_for(entered)
    task.cancel()  # the caller talks while the database is being asked
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The check ran to completion in its thread, so the model is told its result.
    assert policy.history[-1]["role"] == "tool"
    assert json.loads(policy.history[-1]["content"])["available"] is True
    assert_well_formed(policy.history)


def test_the_model_reads_which_words_were_unsure_and_what_was_keyed() -> None:
    from routing.llm import _as_heard
    from transcripts.heard import Heard, HeardWord

    words = (HeardWord("Priya", 0.9), HeardWord("Patol", 0.2))
    assert _as_heard("Priya Patol", Heard("Priya Patol", words)) == (
        "Priya Patol\n(speech recognition unsure of: patol)"
    )
    assert _as_heard("5552223333", Heard("5552223333", keyed=True)) == (
        "(keyed on the phone keypad) 5552223333"
    )
    assert _as_heard("Hello", None) == "Hello"
