"""A setting that cannot work, or a database or server that is not there: the installed
`voice-agent` says in one line what to fix, with no traceback (unless asked for one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.api_support import LiveServer, api_app
from tests.conftest import AUDIO, free_port
from tests.pg_support import database_url
from voice_agent.settings import Settings

VOICE_AGENT = Path(sys.executable).parent / "voice-agent"


def run(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RECORDING_KEY")}
    environ.pop("VOICE_AGENT_DEBUG", None)
    environ.update(VOICE_AGENT_DATA_DIR=str(data), TWILIO_AUTH_TOKEN="cli-errors-token", **env)
    return subprocess.run(
        [str(VOICE_AGENT), *args], capture_output=True, text=True, env=environ, timeout=120
    )


def one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("voice-agent: error: "), done.stderr
    return lines[0]


def test_a_postgres_url_as_hosting_platforms_write_it_works(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        for scheme in ("postgres", "postgresql"):
            plain = make_url(url).set(drivername=scheme).render_as_string(hide_password=False)
            done = run(tmp_path, "calls", "list", "--json", DATABASE_URL=plain)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "[]"


def test_a_refused_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgres://postgres:hunter2@127.0.0.1:{free_port()}/test?connect_timeout=5"
    line = one_line(run(tmp_path, "calls", "list", DATABASE_URL=url), 1)
    assert "cannot use the database at postgres://postgres:***@127.0.0.1" in line, line
    assert "Connection refused" in line and "is it running?" in line
    assert "hunter2" not in line


def test_a_sqlite_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    line = one_line(run(tmp_path, "business", "list", DATABASE_URL=url), 1)
    assert "unable to open database file" in line and "write to its directory" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "DATABASE_URL is not a database URL; expected e.g. postgresql+psycopg://"),
        ("http://db.example.com/x", "DATABASE_URL: unknown database kind 'http'"),
        ("postgresql+asyncpg://h/db", "DATABASE_URL: the driver for 'postgresql+asyncpg' is not"),
    ],
)
def test_a_database_url_that_cannot_work_is_one_line(tmp_path: Path, url: str, says: str) -> None:
    # asyncpg is no dependency of ours; shadowed, it is not installed wherever this runs
    shadow = tmp_path / "shadow"
    (shadow / "asyncpg").mkdir(parents=True)
    (shadow / "asyncpg" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'asyncpg'\", name='asyncpg')\n"
    )
    path = os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))
    for command in (("calls", "list"), ("db", "upgrade"), ("serve", "--port", "0")):
        line = one_line(run(tmp_path, *command, DATABASE_URL=url, PYTHONPATH=path), 2)
        assert says in line, line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = run(tmp_path, "--debug", "calls", "list", DATABASE_URL="not a url")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr
    done = run(tmp_path, "calls", "list", DATABASE_URL="not a url", VOICE_AGENT_DEBUG="1")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_replay_without_a_server_says_to_start_one(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    wav = str(AUDIO / "goodbye.wav")
    line = one_line(run(tmp_path, "replay", "--url", url, "--fast", wav), 1)
    assert f"no voice agent answering at {url}: start it with `voice-agent serve`" in line


def test_replay_with_another_token_than_the_server_says_so(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "server", twilio_auth_token="the-servers-token")
    with LiveServer(api_app(settings)) as url:
        wav = str(AUDIO / "goodbye.wav")
        line = one_line(run(tmp_path, "replay", "--url", url, "--fast", wav), 1)
    assert "refused the signed webhook (403)" in line and "TWILIO_AUTH_TOKEN" in line


def test_a_bad_setting_is_one_line_that_never_shows_a_secret(tmp_path: Path) -> None:
    line = one_line(run(tmp_path, "calls", "list", RECORDING_KEY="c2VjcmV0LWJ1dC1zaG9ydA=="), 2)
    assert "RECORDING_KEY: a recording key is 32 bytes, base64-encoded" in line
    assert "c2VjcmV0" not in line
    line = one_line(run(tmp_path, "calls", "list", WHISPER_WORKERS="two"), 2)
    assert line.startswith("voice-agent: error: WHISPER_WORKERS: ") and "integer" in line
