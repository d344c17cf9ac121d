"""The understood bench's pure parts: its sets, how its caller answers the receptionist, and
how a stored booking is scored. No speech, no timing."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.understood import (
    Caller,
    Questions,
    classify,
    house_number_words,
    readback_fields,
    score,
    spell,
    summarize,
    to_speech,
)
from bench.understood_sets import HELDOUT, LINES, NOW, NY, TUNING, BookingCall, Wanted

PRIYA = BookingCall(
    "x1", "Priya", "Patel", 1180, "Quail Hollow", "Road",
    Wanted("Thursday at ten in the morning", 3, 10),
    "My kitchen sink is clogged.", "en-us", 160, "clean", 1,
)  # fmt: skip
THURSDAY_10 = datetime(2026, 12, 3, 10, 0, tzinfo=NY)
READBACK = (
    "Let me read that back. {name}, at {address}, {when}, for drain cleaning. Is that correct?"
)


def readback(
    name: str = "Priya Patel",
    address: str = "1180 Quail Hollow Road",
    when: str = "Thursday, December 3 at 10 AM",
) -> str:
    return READBACK.format(name=name, address=address, when=when)


def test_sets_are_apart_and_sized() -> None:
    assert len(TUNING) == 12 and len(HELDOUT) == 24
    assert not {c.name for c in TUNING} & {c.name for c in HELDOUT}
    assert not {c.street_full for c in TUNING} & {c.street_full for c in HELDOUT}
    assert not {c.voice for c in TUNING} & {c.voice for c in HELDOUT}
    assert not {c.seed for c in TUNING} & {c.seed for c in HELDOUT}
    for calls in (TUNING, HELDOUT):
        assert len({c.id for c in calls}) == len(calls)
        assert {c.line for c in calls} == set(LINES)
        assert all(145 <= c.wpm <= 185 for c in calls)
        assert 0.25 <= sum(c.easy for c in calls) / len(calls) <= 0.4
        # slot starts of the demo business (2-hour slots from 7 AM), after the bench's now
        assert all(c.wanted.hour in (7, 9, 11, 13, 15, 17) for c in calls)
        assert all(c.wanted.at() > NOW for c in calls)


def test_wanted_time_is_the_coming_weekday() -> None:
    assert PRIYA.wanted.at() == THURSDAY_10
    assert Wanted("tomorrow at nine", 1, 9).at() == datetime(2026, 12, 1, 9, tzinfo=NY)
    assert Wanted("Monday at nine", 0, 9).at() == datetime(2026, 12, 7, 9, tzinfo=NY)


def test_speech_says_numbers_names_and_letters_as_a_caller_would() -> None:
    assert house_number_words(57) == "fifty seven"
    assert house_number_words(812) == "eight twelve"
    assert house_number_words(305) == "three oh five"
    assert house_number_words(1180) == "eleven eighty"
    assert house_number_words(1907) == "nineteen oh seven"
    assert house_number_words(2000) == "two thousand"
    assert spell("Patel") == "P A T E L"
    niamh = TUNING[4]
    assert niamh.first == "Niamh"
    said = to_speech(f"No, the name is {niamh.name}, {spell(niamh.last)}.", niamh)
    assert said.startswith("No, the name is Neeve Koh-vahl-chick, K, O, W, A, L, C, Z, Y, K")
    assert to_speech("It's 1180 Quail Hollow Road.", PRIYA) == (
        "It's eleven eighty Quail Hollow Road."
    )


def test_classify_the_receptionists_prompts() -> None:
    cases = {
        "Thanks for calling Bluebird Plumbing & HVAC. How can I help you today?": "greeting",
        "I'm sorry to hear that. I can get a technician out to you. May I have your name?": (
            "ask_name"
        ),
        "Sorry, what name should I put the visit under?": "ask_name",
        "Thanks, Priya. What's the address where you need the service?": "ask_address",
        "Could you give me the street number and street?": "ask_address",
        "Thank you. When would you like the technician to come by?": "ask_time",
        "No problem. What day and time would work better?": "ask_time",
        "That time is fully booked. I can offer Thursday, December 3 at 9 AM or Thursday, "
        "December 3 at 11 AM. Would that work?": "offer",
        readback(): "readback",
        "You're all set. Your visit is Thursday, December 3 at 10 AM. May we text you a "
        "confirmation of this visit at this number?": "sms",
        "Great, we'll text you a confirmation. Is there anything else I can help you with?": (
            "anything_else"
        ),
        "Thank you for calling Bluebird Plumbing & HVAC. Goodbye!": "goodbye",
        "Thanks, Priya. Is that Patel, P-A-T-E-L?": "check",
        "Could you spell your last name for me?": "spell",
        "How do you spell the street name?": "spell",
        "What should I change: the name, the address or the time?": "change",
        "What's the address? You can also key it in on your keypad.": "ask_address",
        "Hmm.": "unknown",
        "I have 5 5 5, 5 5 5, 0 1 2 3. Is that right?": "callback",
        "What number should we call you back on? You can say it, or key it in.": (
            "callback_number"
        ),
    }
    for text, kind in cases.items():
        assert classify(text) == kind, text


def test_caller_answers_each_prompt() -> None:
    c = Caller(PRIYA)
    assert c.answer("Thanks for calling. How can I help you today?").text == PRIYA.problem
    assert "Priya Patel" in c.answer("May I have your name?").text
    assert "1180 Quail Hollow Road" in c.answer("What's the address?").text
    assert "Thursday at ten in the morning" in c.answer("When would you like us?").text
    assert c.answer("Is that Patel, P-A-T-E-L?").text == "Yes."
    assert c.answer("Is that Pattel, P-A-T-T-E-L?").text == "No, it's Patel, P A T E L."
    assert c.answer("Is your last name Patel, P-A-D-E-L?").text == "No, it's Patel, P A T E L."
    assert c.answer("Is the street Quail, Q-U-A-I-L?").text == "Yes."
    assert c.answer("Is that 1180?").text == "Yes."
    assert c.answer("Is that 1118?").text == "No, it's 1180."
    assert c.answer("Could you spell your last name for me?").text == "Sure, Patel, P A T E L."
    assert c.answer("Could you spell your first name?").text == "Sure, Priya, P R I Y A."
    assert c.answer("How do you spell the street?").text == (
        "Sure, Quail Hollow, Q U A I L, H O L L O W."
    )
    assert c.answer("Sorry, how do you spell Pattel?").text == "Sure, Patel, P A T E L."
    assert c.answer("May we text you a confirmation of this visit?").text == "Yes, please."
    end = c.answer("Is there anything else I can help you with?")
    assert end.hang_up


def test_caller_judges_a_readback_and_corrects_the_first_wrong_field() -> None:
    c = Caller(PRIYA)
    assert c.answer(readback()).text == "Yes, that's right."
    assert c.answer(readback(name="Pria Patel")).text == ("No, the name is Priya Patel, P A T E L.")
    assert c.answer("What should I change: the name, the address or the time?").text == (
        "The name is Priya Patel, P A T E L."
    )
    assert c.answer(readback(address="1180 Quail Hollow Rd.")).text == "Yes, that's right."
    assert c.answer(readback(address="1118 Quail Hollow Road")).text == (
        "No, the address is 1180 Quail Hollow Road."
    )
    assert c.answer(readback(when="Thursday, December 3 at 2 PM")).text == (
        "No, I said Thursday at ten in the morning."
    )
    assert c.answer("What should I change?").text == "I said Thursday at ten in the morning."
    assert readback_fields(readback(name="Priya Patel", when="Friday, December 4 at 10 AM"),
                           PRIYA) == {"name": True, "address": True, "time": False}  # fmt: skip
    tuesday = Caller(TUNING[0])  # tomorrow at nine
    assert tuesday.answer(
        readback("David Clark", "57 Lincoln Avenue", "tomorrow at 9 AM")
    ).text == ("Yes, that's right.")


def test_caller_takes_an_offered_time_only_if_it_is_the_wanted_one() -> None:
    c = Caller(PRIYA)
    offer = "I can offer Thursday, December 3 at {} or Thursday, December 3 at {}. Would that work?"
    assert c.answer(offer.format("10 AM", "1 PM")).text == "Yes, the first one."
    assert c.answer(offer.format("9 AM", "10 AM")).text == "The second one, please."
    assert (
        c.answer(offer.format("9 AM", "1 PM")).text == "No, I said Thursday at ten in the morning."
    )


def test_caller_ignores_the_keypad_and_falls_back_once_then_leaves() -> None:
    c = Caller(PRIYA)
    said = c.answer("What's the address where you need the service? Or key it in on the keypad.")
    assert "1180 Quail Hollow Road" in said.text
    assert c.answer("Hmm, the weather.").text == said.text
    assert c.answer("Hmm, the weather.").hang_up
    menu = "I can book a visit, or take a message. What can I do for you?"
    c2 = Caller(PRIYA)
    assert c2.answer(menu).text == PRIYA.problem
    assert c2.answer(menu).text == "I'd like to book a visit, please."
    assert c2.answer(menu).text == "I need a technician to come out."


def test_extra_questions() -> None:
    q = Questions()
    kinds = ["greeting", "ask_name", "check", "ask_address", "ask_time", "readback"]
    assert [q.add(k) for k in kinds] == [False, False, True, False, False, False]
    assert q.add("ask_time") and q.add("offer") and q.add("readback") and q.add("spell")
    assert not q.add("sms") and q.add("change")
    assert q.extra == ["check", "ask_time", "offer", "readback", "spell", "change"]


def test_score_a_stored_booking() -> None:
    stored = {
        "name": "priya patel",
        "address": "1180 Quail Hollow Rd, Springfield",
        "scheduled_for": THURSDAY_10.astimezone(UTC),
    }
    assert score(stored, PRIYA) == {"name": True, "address": True, "time": True}
    wrong = {
        "name": "Priya Patell",
        "address": "118 Quail Hollow Road",
        "scheduled_for": datetime(2026, 12, 3, 11, tzinfo=NY),
    }
    assert score(wrong, PRIYA) == {"name": False, "address": False, "time": False}
    assert score({**stored, "address": "1180 Quail Road"}, PRIYA)["address"] is False
    assert score(None, PRIYA) == {"name": False, "address": False, "time": False}
    result = {
        "booked": True,
        "right": score(stored, PRIYA),
        "extra_questions": 2,
        "caller_turns": 7,
        "seconds": 10.0,
    }
    missed = {**result, "booked": False, "right": score(None, PRIYA), "extra_questions": 0}
    totals = summarize([result, missed])
    assert totals["all_right_pct"] == 50 and totals["name_right_pct"] == 50
    assert totals["extra_questions_mean"] == 1 and totals["caller_turns_mean"] == 7
