"""The shared transcription queue: finals first, cancelled guesses skipped, errors reported."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from transcripts.scheduler import TranscriptionScheduler


class Recording:
    """A fake engine that blocks until released and remembers what it was asked."""

    def __init__(self) -> None:
        self.order: list[int] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def transcribe(self, audio: np.ndarray) -> str:
        self.started.set()
        self.gate.wait(10)
        n = round(len(audio) / 16000)  # seconds of audio name the job
        if n == 9:
            raise RuntimeError("model exploded")
        self.order.append(n)
        return f"job {n}"


def seconds(n: int) -> np.ndarray:
    return np.zeros(8000 * n, np.int16)


async def test_finals_jump_ahead_of_speculative_work_and_cancelled_work_is_skipped() -> None:
    engine = Recording()
    stt = TranscriptionScheduler(engine, workers=1)
    blocker = asyncio.create_task(stt.transcribe(seconds(1)))
    await asyncio.to_thread(engine.started.wait, 10)  # the worker is busy with job 1
    guess = asyncio.create_task(stt.transcribe(seconds(2), final=False))
    dropped = asyncio.create_task(stt.transcribe(seconds(3), final=False))
    final = asyncio.create_task(stt.transcribe(seconds(4)))
    await asyncio.sleep(0.05)
    dropped.cancel()
    engine.gate.set()
    assert (await final)[0] == "job 4" and (await guess)[0] == "job 2"
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
    assert (await stt.transcribe(seconds(1)))[0] == "job 1"
    stt.close()
