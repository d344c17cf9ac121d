"""Barge-in, measured where Twilio is: the caller starts talking over the agent's greeting,
and the time from the first voiced frame the caller sent to the `clear` that arrives back.
Also: a caller who only says "uh-huh" or "okay" over the agent, which must not cost the
rest of what the agent was saying.

    python bench/bargein.py                 # starts its own server on a free port
    python bench/bargein.py --url URL       # against a running server (same data dir)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import serving  # noqa: E402
from media import g711  # noqa: E402
from media.tts import PiperSynthesizer  # noqa: E402
from storage.calls import CallStore  # noqa: E402
from storage.db import make_engine  # noqa: E402
from voice_agent.replay.audio import FRAME_S, SILENCE_FRAME, load_turn, speech_spans  # noqa: E402
from voice_agent.replay.caller import pace  # noqa: E402
from voice_agent.replay.peer import connect_stream, ring  # noqa: E402
from voice_agent.settings import Settings  # noqa: E402
from voice_agent.twilio.signatures import SignatureChecker  # noqa: E402

AUDIO = ROOT / "fixtures" / "audio"
CUT_INS = [
    "sink-clogged.wav",
    "talk-to-person.wav",
    "billing-question.wav",
    "furnace-out.wav",
    "gas-smell.wav",
    "hours-question.wav",
    "human-jfk.wav",
    "human-goforward.wav",
]
BACKCHANNELS = ["Uh-huh.", "Okay.", "Mm-hmm.", "Yeah."]
LISTEN_S = 1.0  # the caller hears this much of the greeting before cutting in


async def cut_in(url: str, signer: SignatureChecker, caller: bytes) -> tuple[float | None, str]:
    """One call: the caller talks over the greeting. Returns (ms from the caller's first
    voiced frame to `clear`, None if none came; the call SID)."""
    async with httpx.AsyncClient(timeout=30) as http:
        # A new caller each time: the per-caller rate limit is not what is measured.
        caller_id = f"+1555555{secrets.randbelow(10_000):04d}"
        ringing = await ring(http, signer, url, caller_id, "+15550100200")
    first_voiced = speech_spans(caller)[0].start
    async with connect_stream(ringing, signer) as peer:
        start, sent = time.perf_counter(), 0
        while (
            peer.first_agent_frame is None
            or time.perf_counter() < peer.first_agent_frame + LISTEN_S
        ):
            await peer.send_audio(SILENCE_FRAME)
            sent += 1
            await pace(start, sent, False)
        voiced_at = None
        for i in range(0, len(caller) - 159, 160):
            if i // 160 == first_voiced:
                voiced_at = time.perf_counter()
            await peer.send_audio(caller[i : i + 160])
            sent += 1
            await pace(start, sent, False)
        for _ in range(int(6 / FRAME_S)):  # line silence while the agent answers
            await peer.send_audio(SILENCE_FRAME)
            sent += 1
            await pace(start, sent, False)
    if peer.cleared_at is None or voiced_at is None:
        return None, ringing.call_sid
    return (peer.cleared_at - voiced_at) * 1000, ringing.call_sid


async def run(url: str, settings: Settings, rounds: int) -> None:
    signer = SignatureChecker(settings.auth_token())
    latencies: list[float] = []
    missed = 0
    for _ in range(rounds):
        for name in CUT_INS:
            ms, _ = await cut_in(url, signer, load_turn(AUDIO / name))
            print(f"  cut in with {name}: clear after {ms:.0f} ms" if ms else f"  {name}: no clear")
            if ms is None:
                missed += 1
            else:
                latencies.append(ms)
    voice = PiperSynthesizer()
    store = CallStore(make_engine(settings.resolved_database_url()))
    kept = 0
    for text in BACKCHANNELS:
        pcm = voice.synthesize(text)
        lead = np.zeros(4000, np.int16)
        mulaw = g711.encode(np.concatenate([lead, pcm, lead]))
        mulaw += bytes([g711.SILENCE_CODE]) * (-len(mulaw) % 160)
        ms, call_sid = await cut_in(url, signer, mulaw)
        await asyncio.sleep(1)  # stored at stream end
        call = store.call_json(call_sid) or {"transcript": [], "turns": []}
        agent = [s["text"] for s in call["transcript"] if s["speaker"] == "agent"]
        # Kept: the greeting's rest was said again and the policy was not asked anything.
        carried_on = len(agent) >= 2 and not call["turns"]
        print(f"  {text!r} over the greeting: clear {'yes' if ms else 'no'}, agent said {agent}")
        kept += carried_on
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    if latencies:
        print(
            f"barge-in, caller's first voiced frame to `clear` at the client: "
            f"p50 {np.percentile(latencies, 50):.0f} ms, "
            f"p95 {np.percentile(latencies, 95):.0f} ms, "
            f"max {max(latencies):.0f} ms, n={len(latencies)}, no clear: {missed}"
        )
    print(f"backchannels after which the agent carried on: {kept}/{len(BACKCHANNELS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    with serving(args.url, args.data_dir) as url:
        asyncio.run(run(url, settings, args.rounds))


if __name__ == "__main__":
    main()
