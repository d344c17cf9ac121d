"""Letters and digits as callers say them, and names and streets made right."""

from __future__ import annotations

import pytest

from routing.fields import doubted, known_street, letters_in, respell, split_address, streets_of
from routing.spelling import closest, say_digits, spell_out, spelled
from transcripts.expect import expectation_after
from transcripts.heard import Heard, HeardWord, heard_from_tokens


@pytest.mark.parametrize(
    "said",
    [
        "P-A-T-E-L.",
        "It's Patel, P A T E L.",
        "P, A, T, E, L",
        "P as in Peter, A, T as in Tom, E, L",
        "papa alpha tango echo lima",
        "No, it's P. A. T. E. L.",
    ],
)
def test_a_spelling_is_read_as_its_letters(said: str) -> None:
    assert spelled(said) == "PATEL"


@pytest.mark.parametrize("said", ["I have a dog", "Is it a B?", "My sink is clogged", ""])
def test_words_are_not_a_spelling(said: str) -> None:
    assert spelled(said) is None


def test_what_the_receptionist_reads_back() -> None:
    assert spell_out("Patel") == "P-A-T-E-L"
    assert say_digits("+15550100142") == "5 5 5, 0 1 0, 0 1 4 2"
    assert say_digits("5550100142") == "5 5 5, 0 1 0, 0 1 4 2"


def test_a_near_miss_is_the_known_word_and_a_far_one_is_not() -> None:
    streets = ["Quail Hollow", "Birch", "Oak"]
    assert closest("Quale Hollow", streets) == "Quail Hollow"
    assert closest("Burch", streets) == "Birch"
    assert closest("Maple", streets) is None
    assert closest("Oat", ["Oak", "Oar"]) is None, "a tie is a doubt, not a guess"


def test_a_misheard_street_is_the_business_s_own_spelling() -> None:
    streets = streets_of(["Birch Avenue", "Quail Hollow Road", "Bluebird", "Springfield"])
    assert streets == ["Birch Avenue", "Quail Hollow Road"]
    assert known_street("1180 Burch Avenue", streets) == ("1180 Birch Avenue", True)
    assert known_street("77 Quale Hollow Rd", streets) == ("77 Quail Hollow Road", True)
    assert known_street("12 Maple Drive", streets) == ("12 Maple Drive", False)
    assert split_address("1180 Birch Avenue") == ("1180", "Birch", "Avenue")


def test_the_doubted_word_is_named_last_word_first() -> None:
    heard = Heard(
        "Priya Patol",
        (HeardWord("Priya", 0.3), HeardWord("Patol", 0.2)),
    )
    assert doubted("Priya Patol", heard) == "Patol"
    assert doubted("Priya Patol", Heard("Priya Patol")) is None, "no probabilities: no doubt"
    assert doubted("Priya Patol", Heard("x", keyed=True)) is None
    assert respell("Priya Patol", "Patol", "PATEL") == "Priya Patel"


def test_the_letters_reading_wins_unless_the_free_one_has_the_spelling_inside_it() -> None:
    assert letters_in("be a video", Heard("be a video", letters="PATEL")) == "PATEL"
    both = Heard("It's Patel, P-A-T-E-L", letters="ISPATEL")
    assert letters_in(both.text, both) == "PATEL"
    assert letters_in("P-A-T-E-L", Heard("P-A-T-E-L")) == "PATEL"


def test_tokens_make_words_at_their_weakest() -> None:
    words = heard_from_tokens(
        [(" My", 0.9), (" name", 0.99), (" Pri", 0.4), ("ya", 0.9), (".", 0.8)]
    )
    assert [(w.text, w.probability) for w in words] == [("My", 0.9), ("name", 0.99), ("Priya", 0.4)]
    assert Heard("My name Priya", words).unsure() == {"priya"}


def test_what_the_agent_asked_for_is_read_from_its_words() -> None:
    assert expectation_after("Thanks. Could you spell your last name for me?") == "letters"
    assert expectation_after("What number should we call you back on? You can key it in.") == (
        "digits"
    )
    assert expectation_after("When would you like the technician to come by?") is None
