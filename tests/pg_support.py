"""A fresh database of each kind for tests parametrized over SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from storage.db import make_engine, upgrade
from tests.conftest import require_service

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def postgresql_database() -> Iterator[str]:
    """The URL of a throwaway database on the local PostgreSQL server, dropped afterwards
    (skipped with the reason when there is no server)."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        require_service("PostgreSQL at 127.0.0.1:5432", str(exc).splitlines()[0])
    name = f"voice_agent_test_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file under tmp_path, or a throwaway database
    on the local PostgreSQL server (skipped with the reason when there is none)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgresql_database() as url:
        yield url


def fresh_schema(engine: Engine) -> None:
    """Every table dropped (PostgreSQL tests share one database per module), then migrated."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)


@contextlib.contextmanager
def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """For a fixture parametrized over KINDS: a freshly migrated database of that kind, a
    SQLite file under tmp_path, or the database of the module's `pg_url` fixture (one
    postgresql_database per module) emptied first."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/voice-agent.db"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    try:
        fresh_schema(engine)
        yield engine
    finally:
        engine.dispose()
