"""Spoken times and numbers as transcripts spell them."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from routing.spoken import normalize_address, parse_when

SUNDAY_8AM = datetime(2026, 11, 29, 8, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.mark.parametrize(
    ("said", "day", "at"),
    [
        ("Thursday afternoon around two would be great.", date(2026, 12, 3), time(14, 0)),
        ("Thursday afternoon at round two would be great.", date(2026, 12, 3), time(14, 0)),
        ("Tomorrow morning at nine if you can.", date(2026, 11, 30), time(9, 0)),
        ("tomorrow at 9 a.m.", date(2026, 11, 30), time(9, 0)),
        ("next Tuesday at ten thirty", date(2026, 12, 1), time(10, 30)),
        ("Friday at noon", date(2026, 12, 4), time(12, 0)),
        ("monday at 3", date(2026, 11, 30), time(15, 0)),
        ("December 12 at three thirty pm", date(2026, 12, 12), time(15, 30)),
        ("on the fifth at 10", date(2026, 12, 5), time(10, 0)),
        ("Friday the 4th at 1", date(2026, 12, 4), time(13, 0)),
        ("Wednesday around 11:30", date(2026, 12, 2), time(11, 30)),
        ("Thursday at 2:30pm", date(2026, 12, 3), time(14, 30)),
        ("today at 5", date(2026, 11, 29), time(17, 0)),
        ("Thursday", date(2026, 12, 3), None),
    ],
)
def test_times(said: str, day: date, at: time | None) -> None:
    when = parse_when(said, SUNDAY_8AM)
    assert (when.day, when.at) == (day, at)


@pytest.mark.parametrize(
    ("said", "address"),
    [
        ("The address is eleven eighty Birch Avenue.", "1180 Birch Avenue"),
        ("The address is 11 80 Birch Avenue.", "1180 Birch Avenue"),
        ("I'm at four twenty two Oak Street.", "422 Oak Street"),
        ("I'm at 4.22 Oak Street.", "422 Oak Street"),
        ("three hundred five Elm Road", "305 Elm Road"),
        ("twelve oh five Maple Drive", "1205 Maple Drive"),
        ("fifteen hundred Main St", "1500 Main St"),
        ("one two three Pine Lane", "123 Pine Lane"),
    ],
)
def test_house_numbers(said: str, address: str) -> None:
    assert normalize_address(said) == address
