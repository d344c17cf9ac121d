"""The receptionist when things are missing: a database that refuses connections mid-call,
a call that ends before anything was arranged, a business whose profile is empty. Real
SQLite (and a real refused PostgreSQL connection), real policies, the fake OpenAI server."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from routing.acts import ReplyPart, Speak, Transfer
from routing.llm import LLMPolicy
from routing.llm_prompt import system_prompt
from routing.llm_tools import tool_schemas
from routing.local import LocalPolicy
from storage.db import make_engine
from storage.models import Booking, ConsentRecord, Handoff, Message
from storage.reception import ReceptionStore
from tests import fake_openai
from tests.dialogue import Conversation
from tests.fake_openai import Call, FakeOpenAI, Text, ToolCalls, tool_results

# The fake server's fixtures, shared by the modules that talk to it.
openai_server, fake = fake_openai.openai_server, fake_openai.fake

CALLER = "+15555550123"
BOOK = ["My kitchen sink is clogged.", "My name is Maria Lopez.",
        "The address is eleven eighty Birch Avenue."]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "calls.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def down(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database that refuses: a SQLite file in a directory that does not exist, or a
    PostgreSQL server address where nothing listens (the connection is refused)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/no-such-dir/calls.db")
    else:
        engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/calls", connect_timeout_s=2)
    yield engine
    engine.dispose()


def rows(conv: Conversation, model: type) -> list:
    with Session(conv.engine) as s:
        return list(s.scalars(select(model)))


def cut_off(conv: Conversation, down: Engine) -> None:
    """The database stops answering from here on."""
    conv.tools.backend = ReceptionStore(down)


def restore(conv: Conversation) -> None:
    conv.tools.backend = ReceptionStore(conv.engine)


# -- the database refuses mid-call: the local policy -----------------------------------------


async def test_booking_with_the_database_down_becomes_a_message(db: Path, down: Engine) -> None:
    conv = Conversation(db)
    cut_off(conv, down)
    await conv.greet()
    for line in BOOK:
        await conv.say(line)
    reply = await conv.say("Thursday at 2 pm would be great.")
    # The caller hears why at once, in the same turn, and is not asked again for the name.
    assert "can't reach our booking system" in reply and "someone calls you back" in reply
    assert "best one to reach you" in reply and "read that back" not in reply
    assert "best time" in await conv.say("Yes, this number is fine.")
    reply = await conv.say("Any time after five.")
    assert "Maria" in reply and "someone will call you back" in reply

    message = conv.tools.facts.message
    assert message is not None and message["id"] is None  # kept with the call, not stored
    assert message["name"] == "Maria Lopez" and "sink" in message["reason"]
    assert "1180 Birch Avenue" in message["text"] and message["callback_number"] == CALLER
    assert conv.outcome == "message_taken"

    restore(conv)  # the database is back when the call ends: the message is stored then
    assert conv.tools.finish_call(["My kitchen sink is clogged."]) == "message_taken"
    [stored] = rows(conv, Message)
    assert (stored.name, stored.callback_number, stored.best_time) == (
        "Maria Lopez", CALLER, "Any time after five")  # fmt: skip
    assert "1180 Birch Avenue" in stored.text and conv.tools.facts.unsaved == []


async def test_database_gone_between_readback_and_yes(db: Path, down: Engine) -> None:
    conv = Conversation(db)
    await conv.greet()
    for line in BOOK:
        await conv.say(line)
    assert "read that back" in await conv.say("Thursday at 2 pm")
    cut_off(conv, down)
    reply = await conv.say("Yes, that's correct.")
    assert "can't reach our booking system" in reply and "all set" not in reply
    assert conv.tools.facts.booking is None and rows(conv, Booking) == []
    assert "best time" in await conv.say("Yes.")


async def test_an_emergency_is_transferred_although_the_handoff_cannot_be_written(
    db: Path, down: Engine
) -> None:
    conv = Conversation(db)
    cut_off(conv, down)
    await conv.greet()
    reply = await conv.say("A pipe burst in the basement and it's flooding")
    assert "connecting you to our on-call dispatcher" in reply and conv.control == "transfer"
    assert conv.tools.facts.handoff is not None and conv.tools.facts.handoff["id"] is None
    assert [e for e, _ in conv.events] == ["call.handed_off"]  # the dispatcher is alerted
    assert conv.outcome == "handed_off"

    assert conv.tools.finish_call(["A pipe burst"]) == "handed_off"  # still down: no raise
    assert [kind for kind, _ in conv.tools.facts.unsaved] == ["handoff"]
    restore(conv)
    assert conv.tools.finish_call(["A pipe burst"]) == "handed_off"
    [handoff] = rows(conv, Handoff)
    assert handoff.dispatcher_name == "Dana Whitfield" and handoff.reason.startswith("emergency")


async def test_sms_consent_that_cannot_be_recorded_sends_no_text(db: Path, down: Engine) -> None:
    conv = Conversation(db)
    await conv.greet()
    for line in BOOK:
        await conv.say(line)
    await conv.say("tomorrow at 9 am")
    assert "all set" in await conv.say("yes")
    cut_off(conv, down)
    reply = await conv.say("Yes, you can text me.")
    assert "won't text you" in reply and "still booked" in reply
    assert "booking.confirmation_requested" not in [e for e, _ in conv.events]
    assert conv.outcome == "booked"
    restore(conv)
    conv.tools.finish_call(["Yes, you can text me."])
    assert [c.opt_in for c in rows(conv, ConsentRecord) if c.call_sid == conv.call_sid] == [True]


# -- the database refuses mid-call: the LLM policy --------------------------------------------


class Fallback:
    async def respond(self, caller_text: str, heard=None) -> AsyncIterator[ReplyPart]:  # type: ignore[no-untyped-def]
        yield Speak("Fallback.")


def llm_policy(conv: Conversation, fake: FakeOpenAI) -> LLMPolicy:
    return LLMPolicy(conv.profile, conv.tools, fake.client(), "gpt-test", Fallback(),  # type: ignore[arg-type]
                     first_token_timeout_s=10.0, turn_timeout_s=20.0,
                     stall_timeout_s=10.0)  # fmt: skip


async def test_llm_tools_with_the_database_down_say_so_and_keep_the_message(
    db: Path, down: Engine, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    conv = Conversation(db)
    cut_off(conv, down)
    policy = llm_policy(conv, fake)
    sorry = "Sorry, I can't reach our booking system right now. Can I take a message?"
    note = {"name": "Maria Lopez", "reason": "clogged sink at 1180 Birch Avenue",
            "best_time": "after five"}  # fmt: skip
    fake.script(
        ToolCalls(Call("check_availability", {"when": "2026-12-01T09:00"})),
        Text(sorry),
        ToolCalls(Call("take_message", note)),
        Text("Thanks Maria, someone will call you back."),
    )
    with caplog.at_level(logging.DEBUG):
        first = [p async for p in policy.respond("Can someone come tomorrow at nine?")]
        second = [p async for p in policy.respond("Maria Lopez, 1180 Birch Avenue, after five.")]
    await policy.client.close()

    assert "".join(p.text for p in first if isinstance(p, Speak)) == sorry
    [checked] = tool_results(fake.requests[1])
    assert checked["available"] is False and checked["unavailable"] is True
    assert "can't be reached" in checked["reason"]
    assert "someone will call you back" in "".join(p.text for p in second if isinstance(p, Speak))
    taken = tool_results(fake.requests[3])[-1]
    assert taken["taken"] is True and taken["saved"] is False
    assert conv.tools.facts.message is not None and conv.outcome == "message_taken"
    # What the caller said stays out of the logs, also when the database fails.
    assert "Birch" not in caplog.text and "Maria" not in caplog.text

    restore(conv)
    assert conv.tools.finish_call([]) == "message_taken"
    [stored] = rows(conv, Message)
    assert stored.name == "Maria Lopez" and stored.callback_number == CALLER


# -- a call that ends before anything was arranged ---------------------------------------------


async def test_a_caller_who_hangs_up_after_problem_and_name_leaves_a_message(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("My kitchen sink is clogged.")
    assert "address" in await conv.say("My name is Maria Lopez.")
    lines = ["Hello?", "My kitchen sink is clogged.", "My name is Maria Lopez."]
    assert conv.tools.finish_call(lines) == "message_taken"
    [message] = rows(conv, Message)
    assert message.name == "Maria Lopez" and "sink" in message.reason
    assert message.callback_number == CALLER and message.call_id is not None
    assert "Caller said: My kitchen sink is clogged. / My name is Maria Lopez." in message.text
    assert "Hello?" not in message.text
    assert [e for e, _ in conv.events] == ["message.created"]


async def test_words_without_dialogue_facts_still_leave_a_message(db: Path) -> None:
    """The LLM policy keeps what it heard in the model's history: the caller's lines do."""
    conv = Conversation(db)
    line = "Hi, the water heater in my garage is making a banging noise"
    assert conv.tools.finish_call(["Hello", line]) == "message_taken"
    [message] = rows(conv, Message)
    assert message.reason == line and message.name is None and message.callback_number == CALLER


@pytest.mark.parametrize(
    ("lines", "outcome"),
    [([], "abandoned"), (["Hello?", "Hello, anyone there?"], "answered"),
     (["Hi.", "Okay, thanks, goodbye."], "answered")],
)  # fmt: skip
async def test_small_talk_leaves_no_message(db: Path, lines: list[str], outcome: str) -> None:
    conv = Conversation(db)
    assert conv.tools.finish_call(lines) == outcome
    assert rows(conv, Message) == []


async def test_answered_questions_and_arranged_calls_leave_no_extra_message(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("What time are you open until today?")
    assert conv.tools.finish_call(["What time are you open until today?"]) == "answered"
    booked = Conversation(db)
    for line in BOOK:
        await booked.say(line)
    await booked.say("tomorrow at 9 am")
    await booked.say("yes")
    assert booked.tools.finish_call([*BOOK, "tomorrow at 9 am", "yes"]) == "booked"
    assert rows(conv, Message) == []


async def test_the_end_of_a_call_tolerates_the_database_down(db: Path, down: Engine) -> None:
    conv = Conversation(db)
    await conv.say("My kitchen sink is clogged.")
    cut_off(conv, down)
    assert conv.tools.finish_call(["My kitchen sink is clogged."]) == "message_taken"
    [(kind, fields)] = conv.tools.facts.unsaved  # what the session can keep for later
    assert kind == "message" and "sink" in fields["reason"]
    assert conv.tools.facts.outcome(caller_spoke=True) == "message_taken"


# -- a business with an empty profile ------------------------------------------------------


def with_profile(conv: Conversation, **changes: Any) -> Conversation:
    """The call, for a business whose profile differs by `changes` (a fresh local policy)."""
    profile = dataclasses.replace(conv.profile, **changes)
    conv.profile = conv.tools.profile = profile
    conv.policy = LocalPolicy(profile, conv.tools)
    return conv


def empty(conv: Conversation) -> Conversation:
    nothing: dict[str, Any] = {"services": (), "dispatchers": (), "opening_hours": {},
                               "service_area": (), "emergency_rules": ()}  # fmt: skip
    return with_profile(conv, name="Acme Home", **nothing)


async def test_an_empty_profile_promises_no_technician(db: Path) -> None:
    conv = empty(Conversation(db))
    await conv.greet()
    reply = await conv.say("My kitchen sink is clogged, can you send someone?")
    assert "technician" not in reply and "someone from Acme Home call you back" in reply
    await conv.say("Maria Lopez")
    await conv.say("Yes.")
    await conv.say("Tomorrow morning.")
    [message] = rows(conv, Message)
    assert message.name == "Maria Lopez" and "sink" in message.reason
    assert conv.tools.check_availability("tomorrow at 9 am")["available"] is False
    assert conv.outcome == "message_taken"


async def test_an_empty_profile_promises_no_transfer(db: Path) -> None:
    conv = empty(Conversation(db))
    menu = await conv.say("Hi, I have a question.")
    assert "book a visit" not in menu and "dispatcher" not in menu and "message" in menu
    reply = await conv.say("Can I talk to a real person please?")
    assert conv.control is None and "Nobody is on call" in reply
    for line in ("Maria Lopez", "Yes.", "Any time."):
        await conv.say(line)
    assert rows(conv, Handoff) == [] and conv.tools.facts.handoff is None
    assert conv.outcome == "message_taken"


async def test_an_empty_profile_answers_questions_without_inventing(db: Path) -> None:
    conv = empty(Conversation(db))
    for question in ("What services do you offer?", "What are your opening hours?",
                     "Do you serve Springfield?"):  # fmt: skip
        reply = await conv.say(question)
        assert "don't have our" in reply and "call you back" in reply, reply
        assert "We do" not in reply and "closed" not in reply and "We serve" not in reply


def test_the_llm_is_not_offered_what_an_empty_profile_cannot_do(db: Path) -> None:
    conv = empty(Conversation(db))
    names = {t["function"]["name"] for t in tool_schemas(conv.profile)}
    assert names == {"take_message", "record_sms_consent", "end_call"}
    prompt = system_prompt(conv.profile, conv.tools)
    assert "can't book visits for Acme Home" in prompt and "Never promise a technician" in prompt
    assert "plumbing" not in prompt and "no dispatcher is on call" in prompt
    assert "hand off at once" not in prompt and "every day closed" not in prompt


async def test_a_transfer_the_llm_was_not_offered_is_refused(db: Path, fake: FakeOpenAI) -> None:
    conv = empty(Conversation(db))
    policy = llm_policy(conv, fake)
    fake.script(ToolCalls(Call("transfer_to_dispatcher", {"reason": "leak", "summary": "-"})),
                Text("Nobody is on call, so let me take a message."))  # fmt: skip
    parts = [p async for p in policy.respond("Put me through to someone.")]
    await policy.client.close()
    assert not any(isinstance(p, Transfer) for p in parts)
    [refused] = tool_results(fake.requests[1])
    assert "Unknown tool" in refused["error"] and rows(conv, Handoff) == []


async def test_a_failure_inside_the_local_policy_is_never_silence(db: Path) -> None:
    """A profile whose time zone can't be loaded breaks every clock-based answer: the caller
    still hears a line at once and the call goes on as a message."""
    conv = with_profile(Conversation(db), timezone="Nowhere/Atlantis")
    reply = await conv.say("What time are you open until today?")
    assert "having trouble with our system" in reply and "name" in reply
    await conv.say("Maria Lopez")
    assert "best time" in await conv.say("Yes.")


async def test_without_a_dispatcher_the_menu_offers_booking_and_messages(db: Path) -> None:
    conv = with_profile(Conversation(db), dispatchers=())
    menu = await conv.say("Hi, I have a question.")
    assert menu.startswith("I can book a visit or take a message.") and "dispatcher" not in menu
    reply = await conv.say("A pipe burst in the basement and it's flooding")
    assert "call 911" in reply and "Nobody is on call" in reply and conv.control is None
    assert rows(conv, Handoff) == [] and conv.tools.facts.handoff is None
