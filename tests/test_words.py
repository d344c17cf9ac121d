"""One rule for the words of a transcript."""

import pytest

from transcripts.words import words


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("Hi, my sink is clogged.", ["hi", "my", "sink", "is", "clogged"]),
        ("Yes. Yes! Really?", ["yes", "yes", "really"]),
        ("My number is 5-5-5, 0123.", ["my", "number", "is", "5", "5", "5", "0123"]),
        ("Around two o'clock.", ["around", "two", "o'clock"]),
        ("I'm at 1180 Birch Avenue.", ["i'm", "at", "1180", "birch", "avenue"]),
        ("Uh-huh.", ["uh", "huh"]),
        ("Tomorrow at 9 a.m., or 11:30?", ["tomorrow", "at", "9", "a", "m", "or", "11", "30"]),
        ("Well\u2014no, Thursday\u2013Friday", ["well", "no", "thursday", "friday"]),
        ("  ...  ", []),
        ("", []),
    ],
)
def test_words(said: str, expected: list[str]) -> None:
    assert words(said) == expected
