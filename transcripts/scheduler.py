"""One transcription queue shared by every call: a bounded pool of worker threads, so the
event loop (and every call's inbound audio) keeps flowing while Whisper works."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from media.resample import phone_to_whisper
from transcripts.engine import Transcriber


class TranscriptionScheduler:
    def __init__(self, engine: Transcriber, workers: int = 1) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")

    async def transcribe(self, pcm8k: np.ndarray) -> tuple[str, float]:
        """int16 8 kHz caller audio -> (text, milliseconds spent)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        text = await loop.run_in_executor(self._pool, self._run, pcm8k)
        return text, (time.perf_counter() - started) * 1000

    def _run(self, pcm8k: np.ndarray) -> str:
        return self.engine.transcribe(phone_to_whisper(pcm8k))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
