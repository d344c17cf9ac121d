"""The deployment's topology as processes on this machine: N `voice-agent serve` workers on
one PostgreSQL database and one Redis, behind a real HAProxy running deploy/haproxy.cfg
(its servers block pointed at the workers). Twilio's side is the replay stand-in."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from sqlalchemy import Engine

from storage.db import make_engine, upgrade
from tests.conftest import ROOT, free_port, require_service
from tests.haproxy_support import haproxy_config_for
from tests.pg_support import postgresql_database

CLI = [sys.executable, "-m", "voice_agent.cli.main"]
TOKEN = "cluster-test-token"
REDIS_URL = "redis://127.0.0.1:6379/11"  # flushed for each cluster
START_S = 240  # loading models on a loaded 2-core machine; polled, not waited out


@dataclass
class Worker:
    name: str
    port: int
    data: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data / "worker.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port)],
                cwd=ROOT,
                env={**self.env, "VOICE_AGENT_DATA_DIR": str(self.data), "WORKER_ID": self.name},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.alive, f"worker {self.name} exited during start-up: {self.tail()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} never became ready: {self.tail()}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout_s: float = 300) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def tail(self, n: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
            self.wait_exit(30)


@dataclass
class Cluster:
    workers: list[Worker]
    balancer_url: str
    database_url: str
    engine: Engine

    def worker(self, name: str) -> Worker:
        return next(w for w in self.workers if w.name == name)


def _haproxy(servers: list[tuple[str, int]], port: int, where: Path) -> subprocess.Popen:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        require_service("HAProxy (Debian package haproxy)", "not installed")
    cfg = where / "haproxy.cfg"
    cfg.write_text(haproxy_config_for(servers, port))
    return subprocess.Popen(
        [binary, "-db", "-f", str(cfg)],
        stdout=open(where / "haproxy.log", "ab"),
        stderr=subprocess.STDOUT,
    )


def _redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        require_service("Redis at 127.0.0.1:6379", str(exc))


@contextlib.contextmanager
def cluster(tmp: Path, names: list[str], **settings: str) -> Iterator[Cluster]:
    """Workers named `names`, all ready and in the balancer's rotation. `settings`: extra
    environment for every worker (e.g. DRAIN_TIMEOUT_S)."""
    _redis()
    with postgresql_database() as database_url:
        engine = make_engine(database_url)
        upgrade(engine)  # as the deployment's one-shot migrate step does
        balancer_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{balancer_port}",
            "RECORDING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "RECOVERY_INTERVAL_S": "1",
            "WHISPER_WORKERS": "1",
            "PIPER_THREADS": "1",
            **settings,
        }
        workers = [Worker(n, free_port(), tmp / n, env) for n in names]
        proxy = None
        try:
            for w in workers:
                w.start()
            for w in workers:
                w.wait_ready()
            proxy = _haproxy([("127.0.0.1", w.port) for w in workers], balancer_port, tmp)
            found = Cluster(workers, f"http://127.0.0.1:{balancer_port}", database_url, engine)
            wait_in_rotation(found)
            yield found
        finally:
            for w in workers:
                w.stop()
            if proxy is not None:
                proxy.kill()
                proxy.wait(30)
            engine.dispose()


def wait_in_rotation(c: Cluster) -> None:
    """The balancer answers (its first checks mark servers up after `rise`)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{c.balancer_url}/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("the balancer never sent a request to a ready worker")


def wait_serving(c: Cluster, worker: Worker) -> None:
    """The balancer sends requests to `worker` again (its checks marked it up): seen by a
    request through the balancer that `worker` answered."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{c.balancer_url}/livez", timeout=5).json().get("worker") == worker.name:
                return
        time.sleep(0.1)
    raise AssertionError(f"the balancer never sent a request to {worker.name}")


def calls_on(worker: Worker) -> int:
    """Calls in progress on `worker`, from its own /metrics."""
    text = httpx.get(f"{worker.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("voice_agent_active_calls{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def wait_busy(worker: Worker) -> None:
    """Until `worker` holds at least one call."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if calls_on(worker):
            return
        time.sleep(0.1)
    raise AssertionError(f"no call reached {worker.name}")
