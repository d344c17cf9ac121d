"""Load: many calls at once against one server, and the media plane alone at scale.

    python bench/load.py calls  --sweep 1 2 4 8 16     # fixture calls placed together
    python bench/load.py media  --sweep 100 250 500 1000  # silent streams, no transcription

Starts its own server (with its own data dir) unless --url is given. Reports voice-to-voice
latency (client side), answered turns, the server's CPU use (from /metrics) and how far its
event loop fell behind real time (the worst scheduling delay it measured)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import sys
import time
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import AUDIO, pct, serving  # noqa: E402
from voice_agent.replay.audio import SILENCE_FRAME  # noqa: E402
from voice_agent.replay.calls import place_call  # noqa: E402
from voice_agent.replay.peer import connect_stream, ring  # noqa: E402
from voice_agent.settings import Settings  # noqa: E402
from voice_agent.twilio.signatures import SignatureChecker  # noqa: E402


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


async def server_stats(url: str) -> tuple[float, float]:
    text = await metrics_text(url)
    return metric(text, "process_cpu_seconds_total"), metric(
        text, "voice_agent_loop_lag_max_seconds"
    )


async def metrics_text(url: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/metrics")).text


def lag_ticks(text: str) -> tuple[float, float]:
    """(20 ms loop ticks so far, of which more than 100 ms late)."""
    total = metric(text, "voice_agent_loop_lag_seconds_count")
    on_time = metric(text, 'voice_agent_loop_lag_seconds_bucket{le="0.1"}')
    return total, total - on_time


def late_share(before: str, after: str) -> float:
    (t0, l0), (t1, l1) = lag_ticks(before), lag_ticks(after)
    return (l1 - l0) / (t1 - t0) if t1 > t0 else float("nan")


async def reset_lag(url: str) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{url}/metrics/reset-lag")


async def calls(url: str, token: str, n: int, held_out: bool = False) -> dict:
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    if held_out:  # recordings never used in tests or tuning
        scripts = manifest["held_out"]["calls"]
    else:
        scripts = [c for c in manifest["calls"] if c["name"] != "human-speech"]
    cpu0, _ = await server_stats(url)
    await reset_lag(url)
    before = await metrics_text(url)
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *[
            place_call(
                url,
                token,
                [AUDIO / t for t in scripts[i % len(scripts)]["turns"]],
                caller=f"+1555555{i:04d}",
            )
            for i in range(n)
        ]
    )
    wall = time.perf_counter() - t0
    cpu1, lag = await server_stats(url)
    turns = [t for r in results for t in r.turns]
    lat = [t.latency_ms for t in turns if t.latency_ms is not None and t.latency_ms >= 0]
    return {
        "n": n,
        "turns": len(turns),
        "answered": len([t for t in turns if t.latency_ms is not None]),
        # The agent spoke inside a long pause of the caller's turn: not a latency.
        "early": len(turns) - len(lat) - len([t for t in turns if t.latency_ms is None]),
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "cpu": (cpu1 - cpu0) / wall,
        "lag_ms": lag * 1000,
        "late": late_share(before, await metrics_text(url)),
    }


async def media(url: str, token: str, n: int, seconds: float) -> dict:
    signer = SignatureChecker(token)
    frame = base64.b64encode(SILENCE_FRAME).decode()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=50)) as http:
        ringings = await asyncio.gather(
            *[ring(http, signer, url, f"+1666{i:07d}", "+15550100200") for i in range(n)]
        )
    cpu0, _ = await server_stats(url)
    await reset_lag(url)
    before = await metrics_text(url)
    behind: list[float] = []

    async def stream(r) -> None:  # type: ignore[no-untyped-def]
        async with connect_stream(r, signer, fast=True) as peer:
            start = time.perf_counter()
            for k in range(int(seconds / 0.02)):
                msg = json.dumps(
                    {
                        "event": "media",
                        "streamSid": peer.stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(k + 1),
                            "timestamp": str(k * 20),
                            "payload": frame,
                        },
                    }
                )
                try:
                    await peer.ws.send(msg)
                except websockets.ConnectionClosed:
                    return  # the agent hung up on the silent line: that stream is done
                delay = start + (k + 1) * 0.02 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    behind.append(-delay)

    t0 = time.perf_counter()
    await asyncio.gather(*[stream(r) for r in ringings])
    wall = time.perf_counter() - t0
    cpu1, lag = await server_stats(url)
    return {
        "n": n,
        "cpu": (cpu1 - cpu0) / wall,
        "lag_ms": lag * 1000,
        "client_behind_ms": max(behind, default=0) * 1000,
        "late": late_share(before, await metrics_text(url)),
    }


async def main_async(args: argparse.Namespace, url: str, token: str) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for n in args.sweep:
        if args.mode == "calls":
            r = await calls(url, token, n, args.held_out)
            print(
                f"calls={n:>3}  turns={r['turns']:>3} answered={r['answered']:>3} "
                f"(inside a pause: {r['early']})  "
                f"p50={r['p50'].strip():>6} ms  p95={r['p95'].strip():>6} ms  "
                f"server cpu={r['cpu']:.2f} cores  loop lag max={r['lag_ms']:.0f} ms  "
                f"ticks >100 ms late={r['late'] * 100:.1f}%",
                flush=True,
            )
        else:
            r = await media(url, token, n, args.seconds)
            print(
                f"streams={n:>4}  server cpu={r['cpu']:.2f} cores  loop lag max="
                f"{r['lag_ms']:.0f} ms  ticks >100 ms late={r['late'] * 100:.1f}%  "
                f"client behind max={r['client_behind_ms']:.0f} ms",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["calls", "media"])
    parser.add_argument("--sweep", type=int, nargs="+", default=None)
    parser.add_argument("--seconds", type=float, default=20.0, help="media mode: stream length")
    parser.add_argument("--url")
    parser.add_argument("--held-out", action="store_true", help="calls mode: held-out calls")
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "data" / f"load-{secrets.token_hex(3)}"
    )
    args = parser.parse_args()
    args.sweep = args.sweep or ([1, 2, 4, 8, 16] if args.mode == "calls" else [100, 250, 500, 1000])
    os.environ.setdefault("SILENCE_PROMPT_MS", "3600000")  # silent streams are not prompted
    os.environ.setdefault("CALLS_PER_CALLER_LIMIT", "100000")
    settings = Settings(data_dir=args.data_dir)
    with serving(args.url, args.data_dir) as url:
        asyncio.run(main_async(args, url, settings.auth_token()))


if __name__ == "__main__":
    main()
