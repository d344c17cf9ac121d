"""Voice-to-voice latency over a simulated phone line, in real time.

    python bench/phone.py single --held-out            # one call at a time
    python bench/phone.py single --tuning --line clean # the fixtures as they are
    python bench/phone.py burst --held-out -n 6        # 6 calls, turn k ending together
    python bench/phone.py staggered --held-out -n 16   # 16 calls started 0.75 s apart
    ... --json /tmp/run.json                           # every number, to compare runs

Each call's caller audio goes through its own seeded phone line (bench/phoneline.py: level,
room, 300-3400 Hz, hiss, mu-law), and between turns the line carries its noise, as a real
call does. Client latency: the end of the caller's speech by energy in the clean recording
(bench/speech_energy.py) to the first agent media frame at the WebSocket. Stage rows come
from the stored turns. Starts its own server (own data dir) unless --url is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import phone_report, phone_run  # noqa: E402
from bench.latency import serving  # noqa: E402
from bench.load import late_share, metrics_text, reset_lag, server_stats  # noqa: E402
from bench.phone_sets import CallPlan, load_set, plan_call  # noqa: E402
from storage.calls import CallStore  # noqa: E402
from storage.db import make_engine  # noqa: E402
from voice_agent.settings import Settings  # noqa: E402


def plans_for(args: argparse.Namespace) -> list[list[CallPlan]]:
    """The runs to make: one list of calls per run (bursts: one per round)."""
    calls = load_set(args.set)
    if args.calls:
        calls = [c for c in calls if c.name in args.calls]
        if not calls:
            raise SystemExit(f"none of {args.calls} is in the {args.set} set")
    phone = args.line == "phone"
    if args.mode == "single":
        return [[plan_call(c, i, phone, args.seed, args.hum) for i, c in enumerate(calls)]]
    n = args.n or (6 if args.mode == "burst" else 16)
    if args.mode == "staggered":
        picks = [calls[i % len(calls)] for i in range(n)]
        return [[plan_call(c, i, phone, args.seed, args.hum) for i, c in enumerate(picks)]]
    rounds = args.rounds or math.ceil(len(calls) / n)  # every call of the set at least once
    return [
        [
            plan_call(calls[(r * n + i) % len(calls)], r * n + i, phone, args.seed, args.hum)
            for i in range(n)
        ]
        for r in range(rounds)
    ]


async def run(args: argparse.Namespace, url: str, settings: Settings) -> dict:
    runs = plans_for(args)
    token = settings.auth_token()
    cpu0, _ = await server_stats(url)
    await reset_lag(url)
    before = await metrics_text(url)
    wall0, client0 = time.perf_counter(), time.process_time()
    outcomes: list[phone_run.CallOutcome] = []
    spreads: list[float] = []
    for plans in runs:
        if args.mode == "single":
            done = await phone_run.single(url, token, plans)
        elif args.mode == "burst":
            done = await phone_run.burst(url, token, plans)
            spreads += phone_run.end_spreads(done)
        else:
            done = await phone_run.staggered(url, token, plans, args.offset_s)
        outcomes += done
    wall, client_cpu = time.perf_counter() - wall0, time.process_time() - client0
    cpu1, lag_max = await server_stats(url)
    late = late_share(before, await metrics_text(url))
    await asyncio.sleep(1)  # the last turns are stored as their calls end
    store = CallStore(make_engine(settings.resolved_database_url()))
    stored = [
        t for o in outcomes for t in (store.call_json(o.result.call_sid) or {"turns": []})["turns"]
    ]
    return {
        "machine": phone_report.machine(),
        "set": args.set,
        "line": args.line,
        "mode": args.mode,
        "seed": args.seed,
        "hum": args.hum,
        "calls": len(outcomes),
        "wall_s": wall,
        "client": phone_report.client_turns(outcomes),
        "stages": phone_report.stage_stats(stored),
        "endpoint_by_hangover": phone_report.endpoint_by_hangover(stored),
        "burst_end_spread_ms": phone_report.summary(spreads) if args.mode == "burst" else None,
        "burst_end_spreads_ms": spreads,
        "server": {
            "late_share": late,
            "lag_max_ms": lag_max * 1000,
            "cpu_cores": (cpu1 - cpu0) / wall,
        },
        "client_cpu_s": client_cpu,
        "client_cpu_cores": client_cpu / wall,
        "stored_turns": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["single", "burst", "staggered"])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--held-out", dest="set", action="store_const", const="held_out")
    which.add_argument("--tuning", dest="set", action="store_const", const="tuning")
    parser.set_defaults(set="held_out")
    parser.add_argument("--line", choices=["phone", "clean"], default="phone")
    parser.add_argument("-n", type=int, help="calls at once (burst: 6, staggered: 16)")
    parser.add_argument("--rounds", type=int, help="burst: rounds (default: cover the set)")
    parser.add_argument("--offset-s", type=float, default=0.75, help="staggered: start gap")
    parser.add_argument("--calls", nargs="+", help="only these calls of the set")
    parser.add_argument("--seed", type=int, default=1, help="draws every call's phone line")
    parser.add_argument("--hum", action="store_true", help="a faint mains hum on half the lines")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--url", help="a running server (same data dir) instead of our own")
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "data" / f"phone-{secrets.token_hex(3)}"
    )
    args = parser.parse_args()
    # Our own server: no "are you still there?" while a burst waits at its barrier, and
    # many calls from the bench's numbers are not a flood.
    os.environ.setdefault("SILENCE_PROMPT_MS", "3600000")
    os.environ.setdefault("CALLS_PER_CALLER_LIMIT", "100000")
    settings = Settings(data_dir=args.data_dir)
    with serving(args.url, args.data_dir) as url:
        report = asyncio.run(run(args, url, settings))
    phone_report.show(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
