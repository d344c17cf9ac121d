"""Several workers starting at once on one database and one data dir: the schema is
migrated once, the demo business seeded once, and generated secrets made once, so every
worker signs and decrypts with the same ones."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from storage.db import make_engine, upgrade
from storage.models import Business
from storage.recordings import load_key
from storage.secret_files import read_or_create
from tests.pg_support import postgresql_database
from voice_agent.settings import Settings

WORKERS = 6


def _upgrade(url: str) -> str:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def _dev_token(data_dir: str) -> str:
    return Settings(data_dir=Path(data_dir), twilio_auth_token=None).auth_token()


def _recording_key(key_file: str) -> bytes:
    return load_key(None, Path(key_file))


def _all_at_once(fn, *args: str) -> list:  # type: ignore[no-untyped-def]
    # Fresh interpreters, as separate workers are: nothing shared but the files and database.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        return list(pool.map(fn, *[[a] * WORKERS for a in args]))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_workers_starting_together_migrate_and_seed_once(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":
        versions = _all_at_once(_upgrade, f"sqlite:///{tmp_path / 'shared.db'}")
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        check(url, versions)
        return
    with postgresql_database() as url:
        check(url, _all_at_once(_upgrade, url))


def check(url: str, versions: list[str]) -> None:
    assert len(set(versions)) == 1, versions  # every worker found the schema at head
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Business)).scalar_one() == 1
    finally:
        engine.dispose()


def test_workers_starting_together_share_one_development_token(tmp_path: Path) -> None:
    tokens = _all_at_once(_dev_token, str(tmp_path / "data"))
    assert len(set(tokens)) == 1 and len(tokens[0]) == 32
    assert (tmp_path / "data" / "twilio-dev-auth-token").read_text() == tokens[0]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["twilio-dev-auth-token"]


def test_workers_starting_together_share_one_recording_key(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "recording.key"
    keys = _all_at_once(_recording_key, str(key_file))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_a_secret_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    first, made = read_or_create(path, lambda: "one")
    again, made_again = read_or_create(path, lambda: "two")
    assert (first, made, again, made_again) == ("one", True, "one", False)
