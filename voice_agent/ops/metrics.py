"""GET /metrics: Prometheus histograms of each turn's latency and its parts, active calls,
the transcription real-time factor, and how far the event loop falls behind real time.

Every series is this worker's own and carries a `worker` label (WORKER_ID, default
host:pid): behind a balancer each worker is scraped on its own address, and the sum of a
series over `worker` is the service's total (active calls are the calls this worker holds,
not the shared registry's count, which every worker would report again)."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from storage.calls import TurnRecord

BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0)
STAGES = ("latency", "endpoint", "transcribe", "policy", "tts", "send")


class Metrics:
    """One registry per app, so tests with several apps in one process do not collide."""

    def __init__(self, worker: str | None = None) -> None:
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.turn = Histogram(
            "voice_agent_turn_seconds",
            "Answered turns: end of caller speech to first audio (stage=latency) and its parts",
            ["worker", "stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        mine = ["worker"]
        self.active = Gauge(
            "voice_agent_active_calls",
            "Calls in progress on this worker",
            mine,
            registry=self.registry,
        ).labels(self.worker)
        self.rtf = Gauge(
            "voice_agent_transcription_rtf",
            "Transcription compute time per second of audio",
            mine,
            registry=self.registry,
        ).labels(self.worker)
        self.lag = Gauge(
            "voice_agent_loop_lag_max_seconds",
            "Worst event-loop scheduling delay since the last reset",
            mine,
            registry=self.registry,
        ).labels(self.worker)
        self.lag_hist = Histogram(
            "voice_agent_loop_lag_seconds",
            "How late the event loop woke for a 20 ms timer: time behind real time",
            mine,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
            registry=self.registry,
        ).labels(self.worker)
        self.draining = Gauge(
            "voice_agent_draining",
            "1 while this worker drains for shutdown",
            mine,
            registry=self.registry,
        ).labels(self.worker)
        self._lag_max = 0.0

    def observe_turn(self, turn: TurnRecord) -> None:
        if not turn.answered:
            return
        for stage in STAGES:
            value = getattr(turn, f"{stage}_ms", None)
            if value is not None:
                self.turn.labels(self.worker, stage).observe(value / 1000)

    async def watch_loop(self, interval_s: float = 0.02) -> None:
        """A task that asks to wake every 20 ms and records how late it woke."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(interval_s)
            late = time.perf_counter() - started - interval_s
            self._lag_max = max(self._lag_max, late)
            self.lag_hist.observe(max(0.0, late))

    def render(
        self, active_calls: int, transcription_rtf: float | None, draining: bool = False
    ) -> bytes:
        self.active.set(active_calls)
        self.draining.set(int(draining))
        if transcription_rtf is not None:
            self.rtf.set(transcription_rtf)
        self.lag.set(self._lag_max)
        return generate_latest(self.registry)

    def reset_lag(self) -> None:
        self._lag_max = 0.0


# The routes read app.state.services themselves: voice_agent.services imports this module.
router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    services = request.app.state.services
    rtf = services.engines.transcriber.stats.real_time_factor if services.ready.is_set() else None
    body = services.metrics.render(len(services.sessions), rtf, services.draining)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.post("/metrics/reset-lag", include_in_schema=False)
async def reset_lag(request: Request) -> Response:
    """For load tests: measure the worst delay from now on."""
    if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
        return Response(status_code=403)
    request.app.state.services.metrics.reset_lag()
    return Response(status_code=204)
