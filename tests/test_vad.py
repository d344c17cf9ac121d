"""webrtcvad against its own published expectations, and the endpointer's turn logic."""

import numpy as np
import pytest

from media.vad import (
    FRAME_SAMPLES,
    Endpointer,
    EndpointerConfig,
    SpeechEnded,
    SpeechStarted,
    VoiceDetector,
)
from tests.conftest import FIXTURES

EXPECTED = {
    0: "011110111111111111111111111100",
    1: "011110111111111111111111111100",
    2: "000000111111111111111111110000",
    3: "000000111111111111111100000000",
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_webrtcvad_matches_reference_on_30ms_frames(mode: int) -> None:
    pcm = np.frombuffer((FIXTURES / "vad" / "test-audio-8k.raw").read_bytes(), dtype="<i2")
    vad = VoiceDetector(mode)
    step = 240  # 30 ms at 8 kHz
    got = "".join(
        "1" if vad.is_speech(pcm[i : i + step]) else "0"
        for i in range(0, len(pcm) - step + 1, step)
    )
    assert got == EXPECTED[mode]


def run(
    pattern: str, config: EndpointerConfig | None = None, every: bool = False
) -> list[tuple[int, object]]:
    """Feed frames whose voice flag is given by '1'/'0'; collect (frame index, event): turn
    starts and ends, or with `every` also pauses and resumptions."""
    ep = Endpointer(
        config or EndpointerConfig(start_ms=60, start_window_ms=100, hangover_ms=200, tail_ms=100)
    )
    events = []
    for i, flag in enumerate(pattern):
        frame = np.full(FRAME_SAMPLES, i, dtype=np.int16)  # sample value = frame index
        event = ep.push(frame, flag == "1")
        if event and (every or isinstance(event, SpeechStarted | SpeechEnded)):
            events.append((i, event))
    return events


def test_turn_starts_after_enough_voice_and_ends_after_hangover() -> None:
    events = run("0000" + "1" * 20 + "0" * 15)
    (_i1, start), (i2, end) = events
    assert isinstance(start, SpeechStarted) and start.at_ms == 4 * 20
    assert isinstance(end, SpeechEnded)
    assert end.start_ms == 80 and end.end_ms == 24 * 20
    assert i2 == 24 + 10 - 1  # closed after 200 ms of silence
    frame_ids = sorted(set(end.audio.tolist()))
    assert frame_ids[0] < 4  # pre-roll kept the audio before the start
    assert 23 in frame_ids and 24 in frame_ids and 29 not in frame_ids  # 100 ms tail only


def test_a_single_click_does_not_start_a_turn() -> None:
    assert run("0001000001000000") == []


def test_a_pause_shorter_than_the_hangover_keeps_one_turn() -> None:
    events = run("1" * 10 + "0" * 8 + "1" * 10 + "0" * 12)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]
    assert events[1][1].end_ms == 28 * 20


def test_flush_closes_a_turn_cut_off_by_hang_up() -> None:
    ep = Endpointer(EndpointerConfig(start_ms=60, start_window_ms=100))
    for _ in range(10):
        ep.push(np.ones(FRAME_SAMPLES, np.int16), True)
    ended = ep.flush()
    assert ended is not None and ended.end_ms == 200 and len(ended.audio) > 0
    assert ep.flush() is None


def test_a_very_long_turn_is_cut_at_the_maximum() -> None:
    config = EndpointerConfig(start_ms=20, start_window_ms=20, max_turn_ms=1000)
    events = run("1" * 80, config)
    assert isinstance(events[1][1], SpeechEnded)
    assert events[1][0] == 49


def test_a_pause_is_announced_and_a_resumption_cancels_it() -> None:
    events = run("1" * 10 + "0" * 6 + "1" * 5 + "0" * 12, every=True)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == [
        "SpeechStarted",
        "SpeechPaused",
        "SpeechResumed",
        "SpeechPaused",
        "SpeechEnded",
    ]
    paused = events[1][1]
    assert paused.end_ms == 200 and len(paused.audio) > 0
    assert events[-1][1].audio.tolist()[: len(paused.audio)] == paused.audio.tolist()


def test_the_hangover_can_be_shortened_for_this_pause_only() -> None:
    ep = Endpointer(EndpointerConfig(start_ms=20, start_window_ms=20, hangover_ms=500))
    frame = np.zeros(FRAME_SAMPLES, np.int16)
    for _ in range(5):
        ep.push(frame, True)
    ep.use_hangover(200)  # a complete sentence was heard in the pause
    events = [ep.push(frame, False) for _ in range(10)]
    assert isinstance(events[9], SpeechEnded)
    for _ in range(5):
        ep.push(frame, True)
    assert ep.hangover_ms == 500, "the next turn starts with the configured hangover"
