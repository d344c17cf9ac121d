"""GET /metrics: Prometheus histograms of each turn's latency and its parts, active calls,
the transcription real-time factor, and how far the event loop falls behind real time."""

from __future__ import annotations

import asyncio
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

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.turn = Histogram(
            "voice_agent_turn_seconds",
            "Answered turns: end of caller speech to first audio (stage=latency) and its parts",
            ["stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.active = Gauge("voice_agent_active_calls", "Calls in progress", registry=self.registry)
        self.rtf = Gauge(
            "voice_agent_transcription_rtf",
            "Transcription compute time per second of audio",
            registry=self.registry,
        )
        self.lag = Gauge(
            "voice_agent_loop_lag_max_seconds",
            "Worst event-loop scheduling delay since the last reset",
            registry=self.registry,
        )
        self.lag_hist = Histogram(
            "voice_agent_loop_lag_seconds",
            "How late the event loop woke for a 20 ms timer: time behind real time",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
            registry=self.registry,
        )
        self._lag_max = 0.0

    def observe_turn(self, turn: TurnRecord) -> None:
        if not turn.answered:
            return
        for stage in STAGES:
            value = getattr(turn, f"{stage}_ms", None)
            if value is not None:
                self.turn.labels(stage).observe(value / 1000)

    async def watch_loop(self, interval_s: float = 0.02) -> None:
        """A task that asks to wake every 20 ms and records how late it woke."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(interval_s)
            late = time.perf_counter() - started - interval_s
            self._lag_max = max(self._lag_max, late)
            self.lag_hist.observe(max(0.0, late))

    def render(self, active_calls: int, transcription_rtf: float | None) -> bytes:
        self.active.set(active_calls)
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
    active = len(await services.live.active_calls())
    rtf = services.engines.transcriber.stats.real_time_factor if services.ready.is_set() else None
    return Response(services.metrics.render(active, rtf), media_type=CONTENT_TYPE_LATEST)


@router.post("/metrics/reset-lag", include_in_schema=False)
async def reset_lag(request: Request) -> Response:
    """For load tests: measure the worst delay from now on."""
    if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
        return Response(status_code=403)
    request.app.state.services.metrics.reset_lag()
    return Response(status_code=204)
