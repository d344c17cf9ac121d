"""kill -9 of a serving process in the middle of a recorded call, then a restart: the call
is closed as interrupted with what was said before the crash, its recording is attached,
and the caller's data can be exported and deleted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import update

from storage.calls import CallStore
from storage.db import make_engine, upgrade
from storage.models import Business
from tests.calling import eventually, line_silence_until
from tests.conftest import AUDIO, ROOT, free_port
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import caller_turn
from voice_agent.replay.peer import Ringing, connect_stream, ring
from voice_agent.twilio.signatures import SignatureChecker

TOKEN = "crash-test-token"
CALLER = "+15555550190"
CLI = [sys.executable, "-m", "voice_agent.cli.main"]


@contextlib.contextmanager
def serving(data: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(data), "TWILIO_AUTH_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the service exited during start-up"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("the service never became healthy")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def transcript(store: CallStore, ringing: Ringing) -> list[dict]:
    return store.call_json(ringing.call_sid)["transcript"]


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(data), "TWILIO_AUTH_TOKEN": TOKEN}
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def test_a_call_killed_mid_way_is_closed_kept_and_deletable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    engine = make_engine(f"sqlite:///{(data / 'voice-agent.db').resolve()}")
    upgrade(engine)
    with engine.begin() as conn:  # the demo business records its calls
        conn.execute(update(Business).values(recording_enabled=True))
    store = CallStore(engine)
    signer = SignatureChecker(TOKEN)

    with serving(data) as (proc, url):
        async with httpx.AsyncClient() as http:
            ringing = await ring(http, signer, url, CALLER, "+15550100200")
        async with connect_stream(ringing, signer, fast=True) as peer:
            turn = await caller_turn(
                peer, "sink-clogged.wav", load_turn(AUDIO / "sink-clogged.wav"), 60
            )
            assert turn.agent_audio_s > 0.3
            stored_words = await line_silence_until(  # lines are stored as they are said
                peer, lambda: any(s["speaker"] == "caller" for s in transcript(store, ringing))
            )
            assert stored_words, "the caller's words were not stored during the call"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    crashed = store.call_json(ringing.call_sid)
    assert crashed["status"] == "in_progress"

    with serving(data):  # start-up closes what the dead process left open
        closed = await eventually(
            lambda: store.call_json(ringing.call_sid)["status"] != "in_progress"
        )
    call = store.call_json(ringing.call_sid)
    assert closed and call["status"] == "interrupted", call
    assert any(s["speaker"] == "caller" and s["text"] for s in call["transcript"]), call
    assert call["recording"], "the recording made before the crash was not attached"

    export = _cli(
        data,
        "privacy",
        "export",
        "--business",
        "1",
        "--phone",
        CALLER,
        "--out",
        str(tmp_path / "caller.json"),
    )
    assert export.returncode == 0, export.stderr
    assert ringing.call_sid in (tmp_path / "caller.json").read_text()
    deleted = _cli(data, "privacy", "delete", "--business", "1", "--phone", CALLER, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    after = store.call_json(ringing.call_sid)
    assert not [s for s in (after or {}).get("transcript", []) if s["speaker"] == "caller"]
    assert not (after or {}).get("recording")
    assert not [p for p in (data / "recordings").rglob("*") if p.is_file()], "audio kept"
