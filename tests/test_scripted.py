"""The scripted transcriber the exact-word e2e tests use hears what a fixture turn says, only
what it says, and only the part of it it was given."""

from __future__ import annotations

import numpy as np
import pytest

from media import g711
from media.resample import phone_to_whisper
from tests.conftest import AUDIO, MANIFEST
from tests.scripted import ScriptedTranscriber
from voice_agent.replay.audio import load_turn

TEXT = {name: turn["text"] for name, turn in MANIFEST["turns"].items()}


@pytest.fixture(scope="module")
def stt() -> ScriptedTranscriber:
    return ScriptedTranscriber()


def phone(name: str) -> np.ndarray:
    return g711.decode(load_turn(AUDIO / name))


@pytest.mark.parametrize("name", ["name-james.wav", "address-birch.wav", "human-jfk.wav"])
def test_a_whole_turn_with_line_silence_around_it_is_its_text(
    stt: ScriptedTranscriber, name: str
) -> None:
    pause = np.zeros(4000, np.int16)
    assert (
        stt.transcribe(phone_to_whisper(np.concatenate([pause, phone(name), pause]))).text
        == (TEXT[name])
    )


def test_a_turn_cut_in_two_gives_its_words_in_two_parts(stt: ScriptedTranscriber) -> None:
    pcm = phone("time-thursday.wav")
    first = stt.transcribe(phone_to_whisper(pcm[: len(pcm) // 2])).text
    second = stt.transcribe(phone_to_whisper(pcm[len(pcm) // 2 :])).text
    assert first and second
    assert f"{first} {second}" == TEXT["time-thursday.wav"]


def test_audio_that_is_no_fixture_turn_is_not_heard(stt: ScriptedTranscriber) -> None:
    hiss = (np.random.default_rng(1).standard_normal(16_000) * 3000).astype(np.int16)
    assert not stt.transcribe(phone_to_whisper(hiss))
    assert not stt.transcribe(np.zeros(16_000, np.float32))
    # A turn's frames swapped pairwise are not that turn (Whisper would still read them).
    mulaw = load_turn(AUDIO / "hours-question.wav")
    frames = [mulaw[i : i + 160] for i in range(0, len(mulaw) - 159, 160)]
    swapped = b"".join(frames[i ^ 1] for i in range(len(frames) // 2 * 2))
    assert not stt.transcribe(phone_to_whisper(g711.decode(swapped)))
