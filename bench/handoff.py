"""Handoff to the console: an emergency call placed as Twilio would, watched on
`GET /api/events` with a dispatcher's token. Prints the events the console receives and
when `call.handoff` arrived relative to the agent closing the stream (negative: before).

    python bench/handoff.py                 # starts its own server on a free port
    python bench/handoff.py --calls 5

The caller's words are synthesized with the bundled voice from sentences that appear in no
test ("held out"), so the emergency rules are exercised on text they were not written for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from storage.businesses import BusinessStore  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.users import UserStore  # noqa: E402
from voice_agent.replay.calls import place_stream_call  # noqa: E402
from voice_agent.settings import Settings  # noqa: E402

EMERGENCIES = [
    "My basement is flooding and the water keeps rising.",
    "A pipe just burst in my bathroom wall, water is everywhere.",
    "The electrical panel is sparking and I smell smoke.",
]


async def watch(url: str, token: str, seen: list[tuple[float, dict]], ready: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=None) as http,
        http.stream("GET", f"{url}/api/events", headers=headers) as response,
    ):
        response.raise_for_status()
        ready.set()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                seen.append((time.perf_counter(), json.loads(line[5:])))


async def one_call(
    url: str, settings: Settings, token: str, text: str, voice: PiperSynthesizer
) -> None:
    seen: list[tuple[float, dict]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(url, token, seen, ready))
    await asyncio.wait_for(ready.wait(), 10)
    pad = np.zeros(4000, np.int16)
    audio = np.concatenate([pad, voice.synthesize(text), np.zeros(8000 * 6, np.int16)])
    caller = f"+1555556{secrets.randbelow(10_000):04d}"
    result = await place_stream_call(url, settings.auth_token(), g711.encode(audio), caller=caller)
    closed = time.perf_counter()
    await asyncio.sleep(1.5)
    watcher.cancel()
    mine = [(t, e) for t, e in seen if e.get("call_sid") == result.call_sid]
    types = [e["type"] for _t, e in mine]
    handoff = next(((t, e) for t, e in mine if e["type"] == "call.handoff"), None)
    print(f"  {text!r}\n    events: {types}")
    if handoff is None:
        print("    no call.handoff")
        return
    t, event = handoff
    print(
        f"    call.handoff {(t - closed) * 1000:+.0f} ms from the stream closing, "
        f"names the caller: {caller in json.dumps(event)}; stream closed by the agent: "
        f"{result.closed_by_agent}"
    )


async def run(url: str, settings: Settings, calls: int) -> None:
    engine = make_engine(settings.resolved_database_url())
    demo = BusinessStore(engine).by_line("+15550100200")
    assert demo is not None, "no demo business"
    _user_id, token = UserStore(engine).add(demo.id, "dispatcher", "bench")
    voice = PiperSynthesizer()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for i in range(calls):
        await one_call(url, settings, token, EMERGENCIES[i % len(EMERGENCIES)], voice)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    with serving(args.url, args.data_dir) as url:
        asyncio.run(run(url, settings, args.calls))


if __name__ == "__main__":
    main()
