"""The shared transcription queue: finals first, cancelled guesses skipped, errors reported."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import numpy as np
import pytest

from transcripts.heard import Heard
from transcripts.scheduler import SpeculationDropped, TranscriptionScheduler


class Recording:
    """A fake engine that blocks until released and remembers what it was asked."""

    def __init__(self) -> None:
        self.order: list[int] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
        self.started.set()
        self.gate.wait(10)
        n = round(len(audio) / 16000)  # seconds of audio name the job
        if n == 9:
            raise RuntimeError("model exploded")
        self.order.append(n)
        return Heard(f"job {n}")


def seconds(n: int) -> np.ndarray:
    return np.zeros(8000 * n, np.int16)


async def test_finals_jump_ahead_of_speculative_work_and_cancelled_work_is_skipped() -> None:
    engine = Recording()
    stt = TranscriptionScheduler(engine, workers=1, stale_s=600)
    blocker = asyncio.create_task(stt.transcribe(seconds(1)))
    await asyncio.to_thread(engine.started.wait, 10)  # the worker is busy with job 1
    guess = asyncio.create_task(stt.transcribe(seconds(2), final=False))
    dropped = asyncio.create_task(stt.transcribe(seconds(3), final=False))
    final = asyncio.create_task(stt.transcribe(seconds(4)))
    await asyncio.sleep(0.05)
    dropped.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dropped  # its ticket is cancelled before the worker can reach it, under any load
    engine.gate.set()
    assert (await final)[0].text == "job 4" and (await guess)[0].text == "job 2"
    await blocker
    for _ in range(6000):  # the worker reaches the cancelled job right after job 2
        if stt.stats.skipped:
            break
        await asyncio.sleep(0.01)
    assert engine.order == [1, 4, 2] and stt.stats.skipped == 1
    assert stt.stats.real_time_factor >= 0
    stt.close()


async def test_an_engine_error_reaches_the_caller_and_the_worker_survives() -> None:
    engine = Recording()
    engine.gate.set()
    stt = TranscriptionScheduler(engine, workers=1)
    with pytest.raises(RuntimeError, match="exploded"):
        await stt.transcribe(seconds(9))
    assert (await stt.transcribe(seconds(1)))[0].text == "job 1"
    stt.close()


async def test_a_guess_that_waited_too_long_is_dropped_not_run() -> None:
    engine = Recording()
    stt = TranscriptionScheduler(engine, workers=1, stale_s=0)
    blocker = asyncio.create_task(stt.transcribe(seconds(1)))
    await asyncio.to_thread(engine.started.wait, 10)
    guess = stt.submit(seconds(2), final=False)
    engine.gate.set()
    await blocker
    with pytest.raises(SpeculationDropped):
        await guess.future
    assert engine.order == [1] and stt.stats.dropped == 1
    assert (await stt.transcribe(seconds(3)))[0].text == "job 3", "finals still run"
    stt.close()


async def test_a_waiting_guess_whose_turn_ended_goes_with_the_finals() -> None:
    engine = Recording()
    stt = TranscriptionScheduler(engine, workers=1, stale_s=600)
    blocker = asyncio.create_task(stt.transcribe(seconds(1)))
    await asyncio.to_thread(engine.started.wait, 10)
    other_guess = stt.submit(seconds(2), final=False)
    ours = stt.submit(seconds(3), final=False)
    ours.promote()  # the caller stopped: this guess is now someone's final
    final = stt.submit(seconds(4))
    engine.gate.set()
    assert (await ours.future)[0].text == "job 3"
    await asyncio.gather(blocker, other_guess.future, final.future)
    assert engine.order == [1, 3, 4, 2] and stt.stats.promoted == 1
    stt.close()


async def test_guesses_can_be_kept_from_the_last_free_worker() -> None:
    engine = Recording()
    stt = TranscriptionScheduler(engine, workers=2, stale_s=600, max_speculative=1)
    first = stt.submit(seconds(1), final=False)
    await asyncio.to_thread(engine.started.wait, 10)  # one worker holds a guess
    second = stt.submit(seconds(2), final=False)  # waits: only one guess runs at a time
    final = stt.submit(seconds(3))
    for _ in range(1000):  # the free worker takes the final while the guess still runs
        if final.state == "running":
            break
        await asyncio.sleep(0.01)
    assert final.state == "running" and second.state == "queued"
    engine.gate.set()
    await asyncio.gather(first.future, second.future, final.future)
    assert sorted(engine.order) == [1, 2, 3]
    stt.close()


async def test_the_call_s_vocabulary_and_what_was_asked_reach_the_engine() -> None:
    asked: list[tuple[str | None, str | None]] = []

    class Noting:
        def transcribe(self, audio, prompt=None, expect=None):  # type: ignore[no-untyped-def]
            asked.append((prompt, expect))
            return Heard("P-A-T-E-L", letters="PATEL")

    stt = TranscriptionScheduler(Noting(), workers=1)
    heard, _ = await stt.transcribe(seconds(1), prompt="Bluebird. Birch Avenue.", expect="letters")
    assert heard.letters == "PATEL" and asked == [("Bluebird. Birch Avenue.", "letters")]
    stt.close()
