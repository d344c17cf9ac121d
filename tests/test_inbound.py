"""CallerAudio's in-order fast path takes frames exactly as the general path does."""

import numpy as np

from media import g711
from media.vad import EndpointerConfig
from media.wav import read_wav_phone
from tests.conftest import FIXTURES
from voice_agent.call.inbound import CallerAudio


def caller_mulaw() -> bytes:
    words = read_wav_phone(FIXTURES / "audio" / "sink-clogged.wav")
    quiet = np.zeros(8000, np.int16)
    return g711.encode(np.concatenate([quiet, words, quiet, quiet]))


def events(chunks: list[tuple[int, bytes]]) -> list[tuple[int, str, int, int]]:
    """(frame index, event type, start, end) of every turn event, and the frame count."""
    audio, got, frame = CallerAudio(1, EndpointerConfig()), [], 0
    for chunk, payload in chunks:
        for event in audio.frames(chunk, payload):
            if event is not None:
                start = getattr(event, "start_ms", getattr(event, "at_ms", -1))
                got.append((frame, type(event).__name__, start, getattr(event, "end_ms", -1)))
            frame += 1
    got.append((frame, "frames", audio.now_ms, 0))
    return got


def test_whole_frames_in_order_give_the_same_turns_as_split_and_shuffled_chunks() -> None:
    mulaw = caller_mulaw()
    whole = [(k + 1, mulaw[i : i + 160]) for k, i in enumerate(range(0, len(mulaw), 160))]
    whole = [(k, p) for k, p in whole if len(p) == 160]
    # Odd-sized chunks go through the pending buffer; swapped pairs through the jitter
    # buffer's reordering: both must come out as the same frames.
    odd = [(k + 1, mulaw[i : i + 100]) for k, i in enumerate(range(0, len(whole) * 160, 100))]
    swapped = list(whole)
    for i in range(3, len(swapped) - 1, 7):  # not the first: it sets the timeline
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    reference = events(whole)
    assert any(name == "SpeechEnded" for _, name, _, _ in reference)
    assert events(odd) == reference
    assert events(swapped)[:-1] == reference[:-1]  # the last frames may still be held
