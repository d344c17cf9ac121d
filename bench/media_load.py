"""The media plane at scale: many silent streams spread over one or more workers.

Every call rings one worker's webhook and streams to the same worker, or (cross) to the
next one: the stream token lives in Redis, so any worker can take it. The streams are
shared out among client processes (bench/wsload.py), each a cheap loop of its own.

Phases, each measured on its own from every worker's /metrics:
    ramp    all streams connect (handshake, token, database, greeting) and start sending
    steady  every stream sends a frame every 20 ms: the figure the target is about
Server CPU is process_cpu_seconds_total; late ticks come from the 20 ms loop-lag
histogram, counts summed over workers. The client's own CPU is its processes' CPU time
in the steady phase; the rest of the machine's busy time (from /proc/stat) is whatever
else ran meanwhile.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.wsload import Pacer, Stream, StreamSpec, Totals, open_stream
from voice_agent.replay.peer import ring
from voice_agent.twilio.signatures import SignatureChecker

LATE_S = 0.1


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (a worker's
    series carry `worker=...`, which is left out of the match); NaN when there is none."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    return sum(found) if found else float("nan")


@dataclass(frozen=True)
class Snapshot:
    """One worker's counters at one moment."""

    cpu_s: float
    ticks: float
    late: float  # ticks more than LATE_S late
    lag_max_s: float  # since the last reset

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        total = metric(text, "voice_agent_loop_lag_seconds_count")
        on_time = metric(text, "voice_agent_loop_lag_seconds_bucket", le=str(LATE_S))
        return cls(
            metric(text, "process_cpu_seconds_total"),
            total,
            total - on_time,
            metric(text, "voice_agent_loop_lag_max_seconds"),
        )


@dataclass(frozen=True)
class Phase:
    """One worker over one phase."""

    cores: float
    ticks: float
    late: float
    lag_max_s: float

    @property
    def late_share(self) -> float:
        return self.late / self.ticks if self.ticks else float("nan")


def phase(a: Snapshot, b: Snapshot, wall: float) -> Phase:
    return Phase((b.cpu_s - a.cpu_s) / wall, b.ticks - a.ticks, b.late - a.late, b.lag_max_s)


def total(phases: list[Phase]) -> Phase:
    return Phase(
        sum(p.cores for p in phases),
        sum(p.ticks for p in phases),
        sum(p.late for p in phases),
        max(p.lag_max_s for p in phases),
    )


async def snapshots(http: httpx.AsyncClient, urls: list[str], reset: bool) -> list[Snapshot]:
    """Every worker's counters now; `reset` starts a new worst-lag window afterwards."""
    texts = await asyncio.gather(*[http.get(f"{u}/metrics") for u in urls])
    if reset:
        await asyncio.gather(*[http.post(f"{u}/metrics/reset-lag") for u in urls])
    return [Snapshot.parse(t.text) for t in texts]


def busy_cores_s() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, from /proc/stat: user to
    softirq, and the time the hypervisor gave our virtual cores to someone else."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:3]) + sum(fields[5:7])) / hz, fields[7] / hz


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown CPU"
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "?")


async def ring_all(urls: list[str], token: str, n: int, cross: bool) -> list[StreamSpec]:
    """Ring n calls, call i at worker i; its stream at worker i (or i+1 when cross)."""
    signer = SignatureChecker(token)
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        ringings = await asyncio.gather(
            *[
                ring(http, signer, urls[i % len(urls)], f"+1666{i:07d}", "+15550100200")
                for i in range(n)
            ]
        )
    specs = []
    for i, r in enumerate(ringings):
        assert r.stream_url, "the webhook did not connect a stream"
        url = r.stream_url
        if cross and len(urls) > 1:
            worker = urlsplit(urls[(i + 1) % len(urls)])
            url = urlunsplit(urlsplit(url)._replace(netloc=worker.netloc))
        params = {**r.parameters, "token": r.token}
        specs.append(StreamSpec(url, signer.sign(url, {}), r.call_sid, params))
    return specs


# ---- one client process -----------------------------------------------------------


def client_process(
    index: int, specs: list[StreamSpec], events: mp.Queue, steady: Event, stop: Event
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio works too, at some more CPU
        pass
    asyncio.run(_client(index, specs, events, steady, stop))


async def _client(
    index: int, specs: list[StreamSpec], events: mp.Queue, steady: Event, stop: Event
) -> None:
    totals, pacer, running = Totals(), Pacer(), asyncio.Event()
    running.set()
    pacing = asyncio.create_task(pacer.run(running, totals))
    gate = asyncio.Semaphore(32)  # handshakes in flight: a burst, not a stampede

    async def opened(spec: StreamSpec) -> Stream | None:
        async with gate:
            stream = await open_stream(spec, totals)
        if stream is not None:
            pacer.add(stream)  # frames flow as soon as the stream has started
        return stream

    streams = [s for s in await asyncio.gather(*[opened(s) for s in specs]) if s is not None]
    events.put(("connected", index, len(streams)))
    await asyncio.to_thread(steady.wait)
    cpu0, t0, behind0 = time.process_time(), time.perf_counter(), totals.behind_max_s
    totals.behind_max_s = 0.0
    await asyncio.to_thread(stop.wait)
    cpu1, t1 = time.process_time(), time.perf_counter()
    behind = totals.behind_max_s
    running.clear()
    await pacing
    await asyncio.gather(*[s.stop() for s in streams])
    events.put(
        (
            "done",
            index,
            {
                "cpu_s": cpu1 - cpu0,
                "wall_s": t1 - t0,
                "behind_ramp_s": behind0,
                "behind_s": behind,
                "failed": totals.failed,
                "closed_by_server": totals.closed_by_server,
                "received_frames": totals.received_frames,
            },
        )
    )


# ---- the run ----------------------------------------------------------------------


@dataclass
class MediaResult:
    n: int
    connected: int
    ramp: list[Phase]
    steady: list[Phase]
    client_cores: float
    client_behind_ms: float
    busy_cores: float  # the whole machine's, workers and client included
    stolen_cores: float  # by the hypervisor
    failed: int
    closed_by_server: int


def _wait(events: mp.Queue, kind: str, count: int, timeout: float) -> list[tuple]:
    got: list[tuple] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        try:
            item = events.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise SystemExit(f"client processes: {len(got)} of {count} {kind}") from None
        if item[0] == kind:
            got.append(item)
    return got


async def media_run(
    urls: list[str], token: str, n: int, seconds: float, procs: int, cross: bool
) -> MediaResult:
    specs = await ring_all(urls, token, n, cross)
    procs = max(1, min(procs, n))
    ctx = mp.get_context("spawn")
    events: mp.Queue = ctx.Queue()
    steady, stop = ctx.Event(), ctx.Event()
    async with httpx.AsyncClient(timeout=60) as http:
        s0, w0 = await snapshots(http, urls, reset=True), time.perf_counter()
        children = [
            ctx.Process(target=client_process, args=(k, specs[k::procs], events, steady, stop))
            for k in range(procs)
        ]
        for child in children:
            child.start()
        connected = await asyncio.to_thread(_wait, events, "connected", procs, 300)
        s1, w1 = await snapshots(http, urls, reset=True), time.perf_counter()
        busy1, self1 = busy_cores_s(), time.process_time()
        steady.set()
        await asyncio.sleep(seconds)
        s2, w2 = await snapshots(http, urls, reset=False), time.perf_counter()
        busy2, self2 = busy_cores_s(), time.process_time()
        stop.set()
        done = await asyncio.to_thread(_wait, events, "done", procs, 120)
    for child in children:
        child.join()
    stats = [d[2] for d in done]
    client_cpu = sum(s["cpu_s"] for s in stats) + (self2 - self1)
    steady_phases = [phase(a, b, w2 - w1) for a, b in zip(s1, s2, strict=True)]
    return MediaResult(
        n=n,
        connected=sum(c[2] for c in connected),
        ramp=[phase(a, b, w1 - w0) for a, b in zip(s0, s1, strict=True)],
        steady=steady_phases,
        client_cores=client_cpu / (w2 - w1),
        client_behind_ms=max(s["behind_s"] for s in stats) * 1000,
        busy_cores=(busy2[0] - busy1[0]) / (w2 - w1),
        stolen_cores=(busy2[1] - busy1[1]) / (w2 - w1),
        failed=sum(s["failed"] for s in stats),
        closed_by_server=sum(s["closed_by_server"] for s in stats),
    )


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"machine: {os.cpu_count()} cores, {cpu_model()}; load average {load}"


def report(r: MediaResult, urls: list[str]) -> str:
    def row(p: Phase) -> str:
        return (
            f"cpu={p.cores:.2f} cores  late={p.late_share * 100:.2f}% "
            f"({p.late:.0f}/{p.ticks:.0f} ticks)  worst lag={p.lag_max_s * 1000:.0f} ms"
        )

    lines = [
        f"streams={r.n} (connected {r.connected}, failed {r.failed}, closed by the server "
        f"{r.closed_by_server})  workers={len(urls)}",
        f"  steady  all workers: {row(total(r.steady))}",
    ]
    if len(urls) > 1:
        lines += [f"          {u}: {row(p)}" for u, p in zip(urls, r.steady, strict=True)]
    lines += [
        f"  ramp    all workers: {row(total(r.ramp))}",
        f"  client: {r.client_cores:.2f} cores, behind max {r.client_behind_ms:.0f} ms;  "
        f"whole machine busy {r.busy_cores:.2f} cores (stolen {r.stolen_cores:.2f})",
    ]
    return "\n".join(lines)
