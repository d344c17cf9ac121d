"""Speech out: an answer's first audio does not wait for a long sentence or other calls."""

import asyncio
import threading

import pytest

from media.synth_pool import SynthPool
from media.tts import first_clause


def test_a_long_first_sentence_is_cut_at_a_clause() -> None:
    advice = "If you smell gas, leave the house right now and call the gas company from outside."
    head, rest = first_clause(advice)
    assert head == "If you smell gas," and rest.startswith("leave the house")
    assert first_clause("Thanks, Maria.") == ["Thanks, Maria."], "short: left whole"
    no_comma = "I can book a technician for Thursday morning and text you a confirmation today."
    assert first_clause(no_comma) == [
        "I can book a technician for Thursday morning",
        "and text you a confirmation today.",
    ]
    assert first_clause("Hi, " + "x" * 80) == ["Hi, " + "x" * 80], "never into a scrap"


async def test_first_words_of_an_answer_are_synthesized_before_other_calls_later_ones() -> None:
    pool = SynthPool(workers=1)
    gate, order = threading.Event(), []

    def synth(name: str) -> str:
        gate.wait(10)
        order.append(name)
        return name

    busy = asyncio.ensure_future(pool.run(synth, "busy"))
    await asyncio.sleep(0.05)  # the one thread holds "busy"
    later = [asyncio.ensure_future(pool.run(synth, f"later-{i}")) for i in range(3)]
    first = asyncio.ensure_future(pool.run(synth, "first", first=True))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(busy, first, *later)
    assert order.index("first") < min(order.index(f"later-{i}") for i in range(3))
    pool.shutdown()


async def test_a_failed_synthesis_reaches_its_caller_and_the_pool_goes_on() -> None:
    pool = SynthPool(workers=1)

    def broken(_text: str) -> str:
        raise RuntimeError("voice model missing")

    with pytest.raises(RuntimeError, match="voice model"):
        await pool.run(broken, "hello")
    assert await pool.run(str.upper, "still here") == "STILL HERE"
    pool.shutdown()


def test_the_voice_with_its_own_thread_count_speaks() -> None:
    from media.tts import PiperSynthesizer

    pcm = PiperSynthesizer(threads=1).synthesize("Thanks for calling.")
    assert pcm.dtype.name == "int16"
    assert 0.4 < len(pcm) / 8000 < 4, "about a second of speech at 8 kHz"
    assert abs(pcm.astype(int)).max() > 1000, "audible, not silence"
