"""Whisper on this machine: time per caller turn and word error rate for each decoding
setting, and how a burst of turns from several calls is served by each worker layout.

    python bench/stt.py                      # beam 1 and 5, 1 and 2 threads, layouts
    python bench/stt.py --burst 6            # six calls ending a turn at the same moment

Audio: every fixture turn with a reference text, as the server hears it (8 kHz mu-law) and
cut as the session cuts it: the audio of the caller's last pause, which is what is
transcribed while the hangover runs and, when the caller does not go on, answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media import g711  # noqa: E402
from media.resample import phone_to_whisper  # noqa: E402
from tests.textnorm import wer  # noqa: E402
from transcripts.engine import WhisperTranscriber  # noqa: E402
from transcripts.scheduler import TranscriptionScheduler  # noqa: E402
from voice_agent.replay.audio import as_paused, load_turn  # noqa: E402

AUDIO = ROOT / "fixtures" / "audio"


def turns() -> list[tuple[str, np.ndarray, str]]:
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    out = []
    for name, info in sorted(manifest["turns"].items()):
        pcm = g711.decode(load_turn(AUDIO / name))
        out.append((name, as_paused(pcm), info["text"]))
    return out


def single(audio: list[tuple[str, np.ndarray, str]], threads: int, beam: int, fit: bool) -> None:
    engine = WhisperTranscriber(cpu_threads=threads, beam_size=beam, fit_window=fit)
    engine.transcribe(phone_to_whisper(audio[0][1]))  # warm-up
    times, errors = [], []
    for _name, pcm, ref in audio:
        started = time.perf_counter()
        text = engine.transcribe(phone_to_whisper(pcm)).text
        times.append((time.perf_counter() - started) * 1000)
        errors.append(wer(ref, text))
    print(
        f"{'fitted window, greedy' if fit else f'30 s window, beam {beam}':<22} "
        f"threads {threads}: per turn p50 {np.percentile(times, 50):5.0f} ms, "
        f"p95 {np.percentile(times, 95):5.0f} ms, mean WER {np.mean(errors) * 100:4.1f}%"
        f"{f', redone in 30 s: {engine.fallbacks}' if fit else ''}",
        flush=True,
    )


async def burst(audio: list[np.ndarray], workers: int, threads: int, fit: bool) -> None:
    engine = WhisperTranscriber(cpu_threads=threads, beam_size=5, workers=workers, fit_window=fit)
    scheduler = TranscriptionScheduler(engine, workers=workers)
    await scheduler.transcribe(audio[0])  # warm-up, one per worker is enough here
    started = time.perf_counter()
    results = await asyncio.gather(*(scheduler.transcribe(pcm) for pcm in audio))
    total = (time.perf_counter() - started) * 1000
    waits = [ms for _text, ms in results]
    scheduler.close()
    print(
        f"{workers} worker(s) x {threads} thread(s), {'fitted' if fit else '30 s, beam 5'}, "
        f"{len(audio)} turns at once: "
        f"answered p50 {np.percentile(waits, 50):5.0f} ms, max {max(waits):5.0f} ms, "
        f"all done {total:5.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=6)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    audio = turns()
    print(
        f"{len(audio)} fixture turns, {sum(len(p) for _n, p, _t in audio) / 8000:.1f} s of speech"
    )
    for threads in (1, 2):
        single(audio, threads, 1, fit=True)
        for beam in (1, 5):
            single(audio, threads, beam, fit=False)
    # Typical caller turns (1-4 s), several calls ending a turn together.
    short = [p for _n, p, _t in audio if 1.0 <= len(p) / 8000 <= 4.0][: args.burst]
    for workers, threads in ((1, 2), (2, 1)):
        for fit in (True, False):
            asyncio.run(burst(short, workers, threads, fit))


if __name__ == "__main__":
    main()
