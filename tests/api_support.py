"""The app as production builds it (create_app + the /api router), served by uvicorn in a
thread with its lifespan, without the speech models; and a way to put calls in it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, update

from storage.calls import CallStore, FinishedCall, SegmentRecord, TurnRecord
from storage.models import Call
from storage.recordings import RecordingStore
from tests.conftest import ServerThread
from voice_agent.app import create_app
from voice_agent.call.session import Engines
from voice_agent.cli import users as cli_users
from voice_agent.settings import Settings


class _IdleTranscriber:
    def close(self) -> None:
        pass


def no_models(_settings: Settings) -> Engines:
    """The API needs no speech models: /healthz turns ready at once."""
    return Engines(transcriber=_IdleTranscriber(), synthesizer=None)  # type: ignore[arg-type]


def api_app(settings: Settings) -> FastAPI:
    """The app as `serve` builds it, without loading the speech models."""
    return create_app(settings, loader=no_models)


class LiveServer(ServerThread):
    """uvicorn in a thread on a free port, lifespan on, as `voice-agent serve` runs it."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app=app, startup_s=60)


@dataclass
class CallSpec:
    sid: str
    business_id: int
    caller: str
    line: str
    started_at: datetime
    outcome: str


def add_call(engine: Engine, spec: CallSpec) -> None:
    """A finished call, through the same CallStore calls the service makes."""
    store = CallStore(engine)
    store.open_call(spec.sid, spec.business_id, spec.caller, spec.line)
    with engine.begin() as conn:  # open_call stamps "now"; the tests need set times
        conn.execute(
            update(Call).where(Call.call_sid == spec.sid).values(started_at=spec.started_at)
        )
    store.finalize(
        FinishedCall(
            call_sid=spec.sid,
            stream_sid="MZ" + spec.sid[2:],
            ended_at=spec.started_at + timedelta(seconds=75),
            outcome=spec.outcome,
            segments=[
                SegmentRecord("agent", "Bluebird, how can I help?", 0, 1500),
                SegmentRecord("caller", f"This is call {spec.sid}.", 2000, 3500),
            ],
            turns=[TurnRecord(0, answered=True, latency_ms=950.0, transcribe_ms=480.0)],
        )
    )


def add_recording(store: RecordingStore, call_sid: str, seconds: float = 1.5) -> None:
    writer = store.writer(call_sid)
    frame = (bytes(range(256)) * 7)[:1600]  # 25 ms of stereo 16-bit PCM; any content will do
    for _ in range(int(seconds * 32000 / len(frame))):
        writer.write(frame)
    writer.close()
    store.save(call_sid, writer)


def run_users_cli(argv: list[str], settings: Settings) -> int:
    """`voice-agent users …` as cli.main dispatches it (cli_users.add_parsers + HANDLERS)."""
    parser = argparse.ArgumentParser(prog="voice-agent")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_users.add_parsers(sub)
    args = parser.parse_args(argv)
    handler: Any = cli_users.HANDLERS[args.command]
    return handler(args, settings)
