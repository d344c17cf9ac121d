"""The phone bench's numbers: client voice-to-voice from the energy end of speech, the
server's stored stages, the endpoint wait by the hangover that applied, cut-offs, loop lag
and CPU. Printed as a table and kept as a dict for --json."""

from __future__ import annotations

import os
import platform
from collections import defaultdict

import numpy as np

from bench.phone_run import CallOutcome

STAGES = ("endpoint_ms", "transcribe_ms", "policy_ms", "tts_ms", "send_ms", "latency_ms")


def machine() -> dict:
    return {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def summary(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "max": float(max(values)),
        "n": len(values),
    }


def client_turns(outcomes: list[CallOutcome]) -> dict:
    """Answered (latency from the energy end), unanswered, and cut-offs: the agent's first
    frame came before the caller had finished, i.e. a pause was taken for the end."""
    answered: list[float] = []
    unanswered = cut_offs = 0
    rows = []
    for o in outcomes:
        for turn in o.result.turns:
            lat = turn.end_latency_ms
            rows.append({"call": o.plan.name, "caller": o.plan.caller, "turn": turn.file})
            rows[-1]["client_ms"] = lat
            if lat is None:
                unanswered += 1
            elif lat < 0:
                cut_offs += 1
            else:
                answered.append(lat)
    return {
        "answered": len(answered),
        "unanswered": unanswered,
        "cut_offs": cut_offs,
        "client_v2v_ms": summary(answered),
        "turns": rows,
    }


def stage_stats(stored: list[dict]) -> dict:
    return {s: summary([t[s] for t in stored if t.get(s) is not None]) for s in STAGES}


def endpoint_by_hangover(stored: list[dict]) -> dict:
    """The endpoint wait of the stored turns, grouped by the hangover the server applied
    (turns stored without `hangover_ms` group as "unknown")."""
    groups: dict[str, list[float]] = defaultdict(list)
    for t in stored:
        if t.get("endpoint_ms") is None:
            continue
        hangover = t.get("hangover_ms")
        groups["unknown" if hangover is None else f"{hangover:.0f}"].append(t["endpoint_ms"])
    return {k: summary(v) for k, v in sorted(groups.items())}


def show(report: dict) -> None:
    m = report["machine"]
    print()
    print(f"machine: {m['machine']}, {m['cpus']} cores, Python {m['python']}")
    print(
        f"set: {report['set']}, line: {report['line']}, mode: {report['mode']}, "
        f"calls: {report['calls']}, wall: {report['wall_s']:.0f} s"
    )
    c = report["client"]
    print(
        f"turns answered: {c['answered']}, unanswered: {c['unanswered']}, "
        f"CUT-OFFS (agent began before the caller's energy end; not in the percentiles): "
        f"{c['cut_offs']}"
    )
    print(f"{'stage':<22}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'n':>5}")
    _row("client v2v (energy)", c["client_v2v_ms"])
    for stage, s in report["stages"].items():
        _row(stage, s)
    for hangover, s in report["endpoint_by_hangover"].items():
        _row(f"endpoint @ {hangover}" + (" ms" if hangover != "unknown" else ""), s)
    if report.get("burst_end_spread_ms") is not None:
        spread = report["burst_end_spread_ms"]
        print(
            f"turn ends together: spread per turn index p50 {_num(spread['p50'])} ms, "
            f"max {_num(spread['max'])} ms (n={spread['n']})"
        )
    lag = report["server"]
    print(
        f"server loop: ticks >100 ms late {lag['late_share'] * 100:.1f}%, worst lag "
        f"{lag['lag_max_ms']:.0f} ms, server cpu {lag['cpu_cores']:.2f} cores; "
        f"load client cpu {report['client_cpu_s']:.1f} s ({report['client_cpu_cores']:.2f} cores)"
    )


def _row(name: str, s: dict) -> None:
    print(f"{name:<22}{_num(s['p50']):>8}{_num(s['p95']):>8}{_num(s['max']):>8}{s['n']:>5}")


def _num(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.0f}"
