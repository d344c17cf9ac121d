import pytest

from transcripts.backchannel import is_backchannel, is_echo


@pytest.mark.parametrize(
    "text",
    [
        "Uh-huh.",
        "Okay.",
        "Mm-hmm.",
        "Yeah.",
        "Okay, got it.",
        "Oh.",
        "Mm-on.",
        "Right, right.",
        "Uh-huh, got it.",  # a hyphenated noise is one word of the three
    ],
)
def test_listening_noises(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize(
    "text",
    ["Wait.", "No, that's wrong.", "My sink is clogged.", "Okay, but my sink is clogged.", ""],
)
def test_words_that_mean_something(text: str) -> None:
    assert not is_backchannel(text)


def test_echo_is_the_agents_words_in_order() -> None:
    agent = "Thanks for calling Bluebird Plumbing. How can I help you today?"
    assert is_echo("thanks for calling bluebird", agent)
    assert is_echo("How can I help you today", agent)
    assert not is_echo("I need help with my sink today", agent)
    assert not is_echo("Thanks.", agent)  # too short to tell
