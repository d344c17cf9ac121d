"""Voice-to-voice latency: place the fixture calls at real-time pace and print p50/p95.

    python bench/latency.py                 # starts its own server on a free port
    python bench/latency.py --url URL       # against a running server (same data dir)
    python bench/latency.py --calls clogged-sink-booking human-speech --fast
    python bench/latency.py --held-out      # recordings never used in tests or tuning

Client latency: end of speech in the caller's audio (webrtcvad on the file) to the first
agent media frame received over the WebSocket. Stage columns come from the stored turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.calls import CallStore  # noqa: E402
from storage.db import make_engine  # noqa: E402
from voice_agent.replay.calls import place_call  # noqa: E402
from voice_agent.settings import Settings  # noqa: E402

AUDIO = ROOT / "fixtures" / "audio"
STAGES = ("endpoint_ms", "transcribe_ms", "policy_ms", "tts_ms", "send_ms", "latency_ms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_agent.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


@contextmanager
def serving(url: str | None, data_dir: Path) -> Iterator[str]:
    """The server at `url`, or one of our own on a free port for as long as it is needed."""
    if url is not None:
        yield url
        return
    proc, own = start_server(data_dir)
    try:
        yield own
    finally:
        proc.terminate()
        proc.wait()


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):7.0f}" if values else "      -"


async def run(url: str, settings: Settings, names: list[str], fast: bool) -> None:
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    every = manifest["calls"] + manifest["held_out"]["calls"]
    calls = {c["name"]: c["turns"] for c in every}
    client: list[float] = []
    unanswered = 0
    early = 0  # the agent started before the end of the caller's (whole) fixture turn
    sids = []
    for name in names:
        result = await place_call(
            url, settings.auth_token(), [AUDIO / t for t in calls[name]], fast=fast
        )
        sids.append(result.call_sid)
        for turn in result.turns:
            if turn.latency_ms is None:
                unanswered += 1
            elif turn.latency_ms < 0:
                early += 1  # a long pause inside the turn was taken as its end
            else:
                client.append(turn.latency_ms)
        print(f"  {name}: {[round(t.latency_ms or -1) for t in result.turns]} ms", flush=True)
    await asyncio.sleep(1)
    store = CallStore(make_engine(settings.resolved_database_url()))
    stored = [t for sid in sids for t in (store.call_json(sid) or {"turns": []})["turns"]]
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"calls: {len(names)}, caller turns answered: {len(client)}, unanswered: {unanswered}, "
        f"answered inside a pause of the caller's turn (not in the percentiles): {early}"
    )
    print(f"{'stage':<16}{'p50 ms':>8}{'p95 ms':>8}{'n':>5}")
    print(f"{'client v2v':<16}{pct(client, 50)} {pct(client, 95)}{len(client):>5}")
    for stage in STAGES:
        values = [t[stage] for t in stored if t.get(stage) is not None]
        print(f"{stage:<16}{pct(values, 50)} {pct(values, 95)}{len(values):>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--calls", nargs="+")
    parser.add_argument("--fast", action="store_true", help="not real-time: latency is then low")
    parser.add_argument(
        "--held-out", action="store_true", help="recordings never used in tests or tuning"
    )
    args = parser.parse_args()
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    group = manifest["held_out"]["calls"] if args.held_out else manifest["calls"]
    names = args.calls or [c["name"] for c in group]
    settings = Settings(data_dir=args.data_dir)
    with serving(args.url, args.data_dir) as url:
        asyncio.run(run(url, settings, names, args.fast))


if __name__ == "__main__":
    main()
