"""The local receptionist from text: the many edge cases audio tests cannot afford."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Booking, ConsentRecord, Handoff, Message
from tests.dialogue import Conversation

BOOK = ["My kitchen sink is clogged.", "My name is Maria Lopez.",
        "The address is eleven eighty Birch Avenue."]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "dialogue.db"


def rows(conv: Conversation, model: type) -> list:
    with Session(conv.engine) as s:
        return list(s.scalars(select(model)))


async def book(conv: Conversation, when: str) -> str:
    await conv.greet()
    for line in BOOK:
        await conv.say(line)
    return await conv.say(when)


async def test_booking_reads_back_confirms_and_stores_in_local_time(db: Path) -> None:
    conv = Conversation(db)
    readback = await book(conv, "Thursday afternoon around two would be great.")
    assert "Maria Lopez" in readback and "1180 Birch Avenue" in readback
    assert "Thursday, December 3 at 2 PM" in readback
    assert rows(conv, Booking) == [], "nothing is booked before the caller confirms"
    reply = await conv.say("Yes, that's correct.")
    assert "all set" in reply and "text you a confirmation" in reply
    assert conv.tools.facts.booking["scheduled_for"] == "2026-12-03T14:00:00-05:00"
    [stored] = rows(conv, Booking)
    assert stored.address == "1180 Birch Avenue" and stored.service == "drain cleaning"
    assert conv.outcome == "booked"
    assert [e for e, _ in conv.events] == ["booking.created"]


async def test_sms_consent_is_recorded_with_wording_time_and_call(db: Path) -> None:
    conv = Conversation(db)
    await book(conv, "tomorrow at 9 am")
    await conv.say("yes")
    await conv.say("Yes, you can text me.")
    consent = [c for c in rows(conv, ConsentRecord) if c.phone == "+15555550123"]
    assert len(consent) == 1 and consent[0].opt_in and consent[0].source == "call"
    assert consent[0].call_sid == conv.call_sid and "text you" in consent[0].wording
    assert consent[0].recorded_at is not None
    assert "booking.confirmation_requested" in [e for e, _ in conv.events]


async def test_declined_sms_is_recorded_and_nothing_is_sent(db: Path) -> None:
    conv = Conversation(db)
    await book(conv, "tomorrow at 9 am")
    await conv.say("yes")
    await conv.say("No, please don't text me.")
    consent = [c for c in rows(conv, ConsentRecord) if c.phone == "+15555550123"]
    assert len(consent) == 1 and not consent[0].opt_in
    assert "booking.confirmation_requested" not in [e for e, _ in conv.events]


async def test_a_full_slot_offers_the_nearest_free_ones(db: Path) -> None:
    for _ in range(2):  # two visits per slot: fill Thursday 14:00
        conv = Conversation(db)
        await book(conv, "Thursday at 2 pm")
        await conv.say("yes")
    conv = Conversation(db)
    reply = await book(conv, "Thursday at 2 pm")
    assert "fully booked" in reply
    # Slots run 07-09, 09-11, 11-13, 13-15 ...: the neighbours of the full 13-15 slot.
    assert "Thursday, December 3 at 11 AM or Thursday, December 3 at 3 PM" in reply
    reply = await conv.say("Yes, the first one.")
    assert "read that back" in reply
    await conv.say("yes")
    assert conv.tools.facts.booking["scheduled_for"].startswith("2026-12-03T11:00")


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("tomorrow at 10 pm", "between 7 AM and 7 PM"),
        ("today at 8 am", "already passed"),
    ],
)
async def test_a_time_outside_hours_or_past_is_refused_with_a_reason(
    db: Path, when: str, reason: str
) -> None:
    conv = Conversation(db)
    reply = await book(conv, when)
    assert reason in reply and "I can offer" in reply
    assert rows(conv, Booking) == []


async def test_gas_smell_gets_safety_advice_before_the_handoff(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    reply = await conv.say("I think I smell gas in my basement.")
    assert reply.index("leave the house") < reply.index("dispatcher")
    assert "gas company" in reply and conv.control == "transfer"
    [handoff] = rows(conv, Handoff)
    assert handoff.reason == "emergency: gas smell" and handoff.dispatcher_phone == "+15550100299"
    assert conv.outcome == "handed_off"
    assert conv.events[0][1]["dispatcher_sms_opt_in"] is True


@pytest.mark.parametrize(
    "text",
    [
        "There's water pouring through my ceiling, please help!",
        "A pipe burst in the basement and it's flooding",
        "My electrical panel is sparking",
        "A pipe just burst in my bathroom wall. Water is everywhere.",
        "There's water everywhere in the kitchen",
        "The furnace is out and it's freezing in here",
        "Can I talk to a real person please?",
    ],
)
async def test_emergencies_and_requests_for_a_person_are_handed_off_at_once(
    db: Path, text: str
) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say(text)
    assert conv.control == "transfer" and conv.outcome == "handed_off"


async def test_a_cold_house_is_a_booking_not_an_emergency(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    reply = await conv.say("My furnace stopped working and the house is getting cold.")
    assert conv.control is None and "name" in reply


async def test_billing_question_becomes_a_message_with_callback_details(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("I have a question about a charge on my last bill.")
    await conv.say("This is James Carter.")
    reply = await conv.say("No, call me at five five five, two two two, three three three three.")
    assert reply == "I have 5 5 5, 2 2 2, 3 3 3 3. Is that right?", "the number is read back"
    assert "best time" in await conv.say("Yes, that's it.")
    await conv.say("Please call me back this evening after six.")
    [message] = rows(conv, Message)
    assert message.name == "James Carter" and message.callback_number == "+15552223333"
    assert "bill" in message.reason and "after six" in message.best_time
    assert conv.outcome == "message_taken"


async def test_callback_number_defaults_to_the_caller_id(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("I'd like to make a complaint about my last visit.")
    await conv.say("Maria Lopez")
    await conv.say("Yes, this number is fine.")
    await conv.say("Any time tomorrow.")
    assert rows(conv, Message)[0].callback_number == "+15555550123"


async def test_questions_are_answered_from_the_profile(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    assert "7 AM to 7 PM" in await conv.say("What time are you open until today?")
    assert "Springfield" in await conv.say("Do you serve Springfield?")
    assert "drain cleaning" in await conv.say("What services do you offer?")
    assert conv.outcome == "answered"
    reply = await conv.say("No, that's all. Goodbye.")
    assert "Goodbye" in reply and conv.control == "end"


async def test_silence_is_prompted_twice_then_the_call_ends_politely(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    first = await conv._collect(conv.policy.on_silence(0))
    second = await conv._collect(conv.policy.on_silence(1))
    assert "still there" in first and "still on the line" in second and conv.control is None
    last = await conv._collect(conv.policy.on_silence(2))
    assert "Goodbye" in last and conv.control == "end"
    assert conv.tools.facts.outcome(caller_spoke=False) == "abandoned"


async def test_a_busy_slot_taken_between_readback_and_yes_is_not_double_booked(db: Path) -> None:
    first, second, third = Conversation(db), Conversation(db), Conversation(db)
    for conv in (first, second, third):
        await book(conv, "Thursday at 2 pm")
    await first.say("yes")
    await second.say("yes")
    reply = await third.say("yes")
    assert "Sorry" in reply and third.outcome != "booked"
    assert len(rows(third, Booking)) == 2


async def test_details_given_all_at_once_are_not_asked_again(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    reply = await conv.say(
        "Hi, this is James Carter, my water heater is leaking, I'm at 422 Oak Street "
        "and tomorrow morning would be best."
    )
    assert "read that back" in reply and "James Carter" in reply and "422 Oak Street" in reply
    assert "tomorrow at 9 AM" in reply
    await conv.say("Yes.")
    assert conv.tools.facts.booking["scheduled_for"] == "2026-12-01T09:00:00-05:00"


async def test_an_address_answer_that_also_names_the_time(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("My toilet is clogged.")
    await conv.say("Maria Lopez.")
    reply = await conv.say("It's 77 Sunset Boulevard, and Friday at 3 works.")
    assert "77 Sunset Boulevard" in reply and "Friday, December 4 at 3 PM" in reply
