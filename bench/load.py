"""Load: many calls at once against one server, and the media plane alone at scale.

    python bench/load.py calls  --sweep 1 2 4 8 16     # fixture calls placed together
    python bench/load.py media  --sweep 100 250 500 1000  # silent streams, no transcription

    # several workers sharing Redis and the database, 4 client processes, streams crossing
    python bench/load.py media --sweep 1000 --url http://127.0.0.1:8101 \
        --url http://127.0.0.1:8102 --client-procs 4 --cross

Starts its own server(s) (each with its own data dir) unless --url is given. Calls mode
reports voice-to-voice latency (client side), answered turns, the server's CPU use (from
/metrics) and how far its event loop fell behind real time. Media mode: see
bench/media_load.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import AUDIO, pct, serving  # noqa: E402
from bench.media_load import machine_line, media_run, metric, report  # noqa: E402
from voice_agent.replay.calls import place_call  # noqa: E402
from voice_agent.settings import Settings  # noqa: E402


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
    on_time = metric(text, "voice_agent_loop_lag_seconds_bucket", le="0.1")
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


async def main_async(args: argparse.Namespace, urls: list[str], token: str) -> None:
    print(machine_line() + f", Python {platform.python_version()}", flush=True)
    for n in args.sweep:
        if args.mode == "calls":
            r = await calls(urls[0], token, n, args.held_out)
            print(
                f"calls={n:>3}  turns={r['turns']:>3} answered={r['answered']:>3} "
                f"(inside a pause: {r['early']})  "
                f"p50={r['p50'].strip():>6} ms  p95={r['p95'].strip():>6} ms  "
                f"server cpu={r['cpu']:.2f} cores  loop lag max={r['lag_ms']:.0f} ms  "
                f"ticks >100 ms late={r['late'] * 100:.1f}%",
                flush=True,
            )
        else:
            m = await media_run(urls, token, n, args.seconds, args.client_procs, args.cross)
            print(report(m, urls), flush=True)
    print(machine_line(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["calls", "media"])
    parser.add_argument("--sweep", type=int, nargs="+", default=None)
    parser.add_argument("--seconds", type=float, default=20.0, help="media mode: steady phase")
    parser.add_argument(
        "--url", action="append", help="a running worker (repeat for several); media streams "
        "go round-robin. Without it: --workers servers of our own",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="servers to start without --url")
    parser.add_argument(
        "--cross", action="store_true", help="media mode: each stream to the worker after "
        "the one that took its webhook (needs workers sharing REDIS_URL and DATABASE_URL)",
    )  # fmt: skip
    parser.add_argument("--client-procs", type=int, default=1, help="media mode: client processes")
    parser.add_argument("--held-out", action="store_true", help="calls mode: held-out calls")
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "data" / f"load-{secrets.token_hex(3)}"
    )
    args = parser.parse_args()
    args.sweep = args.sweep or ([1, 2, 4, 8, 16] if args.mode == "calls" else [100, 250, 500, 1000])
    os.environ.setdefault("SILENCE_PROMPT_MS", "3600000")  # silent streams are not prompted
    os.environ.setdefault("CALLS_PER_CALLER_LIMIT", "100000")
    settings = Settings(data_dir=args.data_dir)
    token = settings.auth_token()
    if not args.url:
        os.environ.setdefault("TWILIO_AUTH_TOKEN", token)  # one token for all of ours
    with contextlib.ExitStack() as stack:
        urls = args.url or [
            stack.enter_context(serving(None, args.data_dir / f"w{k}")) for k in range(args.workers)
        ]
        asyncio.run(main_async(args, urls, token))


if __name__ == "__main__":
    main()
