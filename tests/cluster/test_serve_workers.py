"""`voice-agent serve --workers N`: one port, N worker processes under a supervisor that
replaces a dead one and, on SIGTERM, lets every worker drain its calls before exiting."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx

from storage.db import make_engine, upgrade
from tests.cluster.test_workers import LONGER, answered, place
from tests.cluster.topology import CLI, REDIS_URL, TOKEN, _redis
from tests.conftest import ROOT, free_port
from tests.pg_support import postgresql_database


def test_several_workers_need_redis(tmp_path: Path) -> None:
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [*CLI, "serve", "--workers", "2", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr


def workers_seen(url: str, want: int, exclude: frozenset[str] = frozenset()) -> set[str]:
    """Worker ids answering on the one port (each request a new connection), until `want`
    of them not in `exclude` were seen."""
    seen: set[str] = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(seen - exclude) < want:
        with contextlib.suppress(httpx.TransportError, ValueError):
            answer = httpx.get(f"{url}/readyz", timeout=5)
            if answer.status_code == 200:
                seen.add(answer.json()["worker"])
        time.sleep(0.05)
    assert len(seen - exclude) >= want, seen
    return seen


async def test_workers_share_a_port_are_replaced_when_killed_and_drain_together(
    tmp_path: Path,
) -> None:
    _redis()
    with postgresql_database() as database_url:
        engine = make_engine(database_url)
        upgrade(engine)
        engine.dispose()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PUBLIC_BASE_URL": url,
            "RECORDING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "VOICE_AGENT_DATA_DIR": str(tmp_path),
            "WHISPER_WORKERS": "1",
            "PIPER_THREADS": "1",
        }
        supervisor = _start(env, port, tmp_path / "serve.log")
        try:
            first = await asyncio.to_thread(workers_seen, url, 2)
            victim = sorted(first)[0]
            os.kill(int(victim.rsplit(":", 1)[1]), signal.SIGKILL)
            # The supervisor starts another worker in its place.
            await asyncio.to_thread(workers_seen, url, 1, frozenset(first))

            call = asyncio.create_task(place(url, LONGER, "+15555550601"))
            await asyncio.to_thread(_wait_busy, url)
            supervisor.send_signal(signal.SIGTERM)  # mid-call: every worker drains
            placed = await call
            code = await asyncio.to_thread(supervisor.wait, 600)
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait(30)
        assert answered(placed) and placed.close_code == 1000, placed
        assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*CLI, "serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_busy(url: str) -> None:
    """Until some worker holds a call (each answers /metrics about itself only, so ask
    until the one that has it answers)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        if any(
            line.startswith("voice_agent_active_calls{") and float(line.rsplit(" ", 1)[1]) >= 1
            for line in text.splitlines()
        ):
            return
        time.sleep(0.05)
    raise AssertionError("the call never reached a worker")
