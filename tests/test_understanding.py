"""The receptionist makes sure of what it books: a name or street the recognizer doubted
is spelled by the caller, the business's own street names correct near misses, a wrong
read-back is fixed one field at a time, numbers are read back or keyed in. Text dialogues
over a real SQLite database, with the recognizer's doubts given as it reports them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Booking, Handoff, Message
from tests.dialogue import Conversation


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "dialogue.db"


def rows(conv: Conversation, model: type) -> list:
    with Session(conv.engine) as s:
        return list(s.scalars(select(model)))


async def start_booking(conv: Conversation) -> str:
    await conv.greet()
    return await conv.say("My kitchen sink is clogged, can someone come out?")


async def test_a_doubted_surname_is_spelled_and_the_spelling_is_booked(db: Path) -> None:
    conv = Conversation(db)
    assert "name" in await start_booking(conv)
    reply = await conv.unsure_of("My name is Priya Patol.", "Patol.")
    assert reply == "Thanks, Priya. Could you spell your last name for me?"
    assert "address" in await conv.spell("PATEL")
    await conv.say("It's 1180 Birch Avenue.")
    readback = await conv.say("Tomorrow at 10 in the morning.")
    assert "Priya Patel, P-A-T-E-L, at 1180 Birch Avenue" in readback
    assert "all set" in await conv.say("Yes, that's right.")
    [booking] = rows(conv, Booking)
    assert booking.name == "Priya Patel" and booking.address == "1180 Birch Avenue"


async def test_a_name_heard_with_confidence_is_not_checked(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    reply = await conv.unsure_of("My name is Maria Lopez.")
    assert "spell" not in reply and "address" in reply


async def test_a_caller_who_just_says_yes_to_a_spelling_keeps_the_name(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.unsure_of("My name is Maria Lopez.", "Lopez.")
    assert "address" in await conv.say("Yes.")
    await conv.say("1180 Birch Avenue.")
    assert "Maria Lopez, at" in await conv.say("Tomorrow at 10 am.")


async def test_a_near_miss_street_is_the_business_s_street_without_a_question(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.say("My name is Maria Lopez.")
    reply = await conv.unsure_of("It's 1180 Burch Avenue.", "Burch")
    assert "spell" not in reply, "the business lists Birch Avenue"
    assert "1180 Birch Avenue" in await conv.say("Tomorrow at 10 am.")


async def test_an_unknown_doubted_street_is_spelled(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.say("My name is Maria Lopez.")
    reply = await conv.unsure_of("It's 77 Kwayle Road.", "Kwayle")
    assert reply.endswith("Could you spell the street name for me?")
    await conv.spell("QUAIL")
    assert "77 Quail Road, Q-U-A-I-L" in await conv.say("Tomorrow at 10 am.")


async def test_a_correction_replaces_one_field_and_the_rest_stands(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.say("My name is Maria Lopez.")
    await conv.say("1180 Birch Avenue.")
    await conv.say("Tomorrow at 10 am.")
    readback = await conv.say("No, the address is 42 Elm Street.")
    assert "Maria Lopez, at 42 Elm Street" in readback and "10 AM" in readback
    readback = await conv.say("No, my name is Marie Lopez.")
    assert "Marie Lopez, at 42 Elm Street" in readback
    assert "all set" in await conv.say("Yes.")
    [booking] = rows(conv, Booking)
    assert (booking.name, booking.address) == ("Marie Lopez", "42 Elm Street")


async def test_a_bare_no_asks_what_to_change(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.say("My name is Maria Lopez.")
    await conv.say("1180 Birch Avenue.")
    await conv.say("Tomorrow at 10 am.")
    assert "What should I change" in await conv.say("No.")
    assert "right name" in await conv.say("The name.")
    assert "Mario Lopez, at 1180 Birch Avenue" in await conv.say("Mario Lopez.")


async def test_a_time_correction_checks_the_new_time(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.say("My name is Maria Lopez.")
    await conv.say("1180 Birch Avenue.")
    await conv.say("Tomorrow at 10 am.")
    readback = await conv.say("No, Thursday at 2 in the afternoon.")
    assert "Thursday, December 3 at 2 PM" in readback and "Maria Lopez" in readback


async def test_read_back_wrong_three_times_becomes_a_message_with_everything(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    await conv.say("My name is Maria Lopez.")
    await conv.say("1180 Birch Avenue.")
    await conv.say("Tomorrow at 10 am.")
    await conv.say("No, the address is 42 Elm Street.")
    await conv.say("No, the address is 44 Elm Street.")
    reply = await conv.say("No, the address is 46 Elm Street.")
    assert "call you back to confirm" in reply
    await conv.say("Yes.")
    await conv.say("Any time.")
    [message] = rows(conv, Message)
    assert message.name == "Maria Lopez" and "Elm Street" in (message.text or "")
    assert rows(conv, Booking) == []


async def test_a_keyed_call_back_number_is_read_back_and_kept(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("I have a question about my bill.")
    await conv.say("This is James Carter.")
    reply = await conv.say("No, use another number.")
    assert "key it in" in reply
    assert await conv.key("5552223333") == "I have 5 5 5, 2 2 2, 3 3 3 3. Is that right?"
    assert "best time" in await conv.say("Yes.")
    await conv.say("After six.")
    [message] = rows(conv, Message)
    assert message.callback_number == "+15552223333"


async def test_a_wrong_number_read_back_is_asked_again(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    await conv.say("I have a question about my bill.")
    await conv.say("This is James Carter.")
    await conv.say("Call me at five five five, two two two, three three three three.")
    assert "What number" in await conv.say("No, that's wrong.")
    assert "5 5 5, 2 2 2, 4 4 4 4" in await conv.key("5552224444")


async def test_a_keyed_zip_code_is_checked_against_the_service_area(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    assert "0 1 1 0 1 is in our service area" in await conv.key("01101")
    assert "outside our service area" in await conv.key("90210")


async def test_menu_keys_do_what_the_menu_says(db: Path) -> None:
    conv = Conversation(db)
    await conv.greet()
    menu = await conv.say("Um, hello?")
    assert "Press 1 to book a visit" in menu and "Press 3 to leave a message" in menu
    assert "name" in await conv.key("3")
    person = Conversation(db.with_name("other.db"))
    await person.greet()
    await person.key("2")
    assert person.control == "transfer" and len(rows(person, Handoff)) == 1


async def test_a_key_that_means_nothing_asks_the_question_again(db: Path) -> None:
    conv = Conversation(db)
    await start_booking(conv)
    reply = await conv.key("7")
    assert reply == "Sorry, I didn't get that entry. May I have your name?"
