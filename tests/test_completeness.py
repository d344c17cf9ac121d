import pytest

from transcripts.completeness import hangover_for, looks_complete


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("My name is Maria Lopez.", True),
        ("Yes, that's correct.", True),
        ("What time are you open until today?", True),
        ("The address is", False),
        ("The address is 1180", False),
        ("My number is five five five", False),
        ("I'm at 422 Oak Street and", False),
        ("um", False),
        ("", False),
        ("Thursday afternoon around two would be great.", True),
    ],
)
def test_looks_complete(text: str, complete: bool) -> None:
    assert looks_complete(text) is complete


@pytest.mark.parametrize(
    ("text", "hangover"),
    [
        ("My name is Maria Lopez.", "short"),
        ("Yes.", "usual"),  # often "Yes, that's correct."
        ("Hi.", "usual"),
        ("That's all.", "usual"),
        ("The address is 1180", "long"),
        ("The address is 1180 Birch Avenue.", "usual"),
        ("My number is 555.", "long"),
        ("I'm at 422 Oak Street and", "long"),
        ("I'm at", "long"),
        ("four queen of clubs", "usual"),  # no punctuation: not enough to wait long
    ],
)
def test_hangover_for(text: str, hangover: str) -> None:
    assert hangover_for(text) == hangover
