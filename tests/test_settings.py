"""Settings from the environment, and the development auth token."""

import base64
import re
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from voice_agent.settings import ConfigError, Settings


def test_environment_names_are_the_conventional_ones(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VOICE_AGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://agent.example.com")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    s = Settings()
    assert s.data_dir == tmp_path and s.resolved_database_url() == "postgresql+psycopg://u@h/db"
    assert s.public_base_url == "https://agent.example.com" and s.auth_token() == "tok"


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    assert s.resolved_database_url() == f"sqlite:///{(tmp_path / 'd').resolve()}/voice-agent.db"


def test_without_a_token_a_private_development_token_is_made_once(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).auth_token()
    assert len(first) == 32
    path = tmp_path / "twilio-dev-auth-token"
    assert path.stat().st_mode & 0o077 == 0, "readable by others"
    assert Settings(data_dir=tmp_path).auth_token() == first


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        (
            "postgresql://u@h:6543/db?sslmode=require",
            "postgresql+psycopg://u@h:6543/db?sslmode=require",
        ),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
    ],
)
def test_postgres_urls_as_platforms_write_them_are_accepted(given: str, used: str) -> None:
    assert Settings(database_url=given).resolved_database_url() == used


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("postgres//u@h/db", "DATABASE_URL is not a database URL"),
        ("redis://localhost/0", "DATABASE_URL: unknown database kind 'redis'"),
        ("postgres+psycopg2://u@h/db", "the driver for 'postgresql+psycopg2' is not installed"),
    ],
)
def test_a_database_url_that_cannot_work_says_what_to_write(
    given: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # not installed, wherever this runs
    with pytest.raises(ConfigError, match=re.escape(says)) as err:
        Settings(database_url=given).resolved_database_url()
    assert "postgresql+psycopg://user:password@host:5432/db" in str(err.value)


def test_a_recording_key_is_checked_and_never_shown() -> None:
    good = base64.b64encode(bytes(range(32))).decode()
    assert Settings(recording_key=f" {good}\n").recording_key == good
    for bad in ("short", base64.b64encode(b"x" * 31).decode(), "not base64 at all!!"):
        with pytest.raises(ValidationError) as err:
            Settings(recording_key=bad)
        assert "32 bytes, base64-encoded" in str(err.value) and bad not in str(err.value)
