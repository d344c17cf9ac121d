"""Engine, schema migrations (Alembic) and the demo business a fresh database starts with."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from storage.business_rows import seed_demo

MIGRATIONS = Path(__file__).parent / "migrations"

TCP_LIVENESS = {  # libpq connection parameters
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # ms
}


def utc(dt: datetime) -> datetime:
    """A stored timestamp as an aware datetime. SQLite drops the offset; everything is
    stored in UTC, so a naive value is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso(dt: datetime | None, tz: tzinfo | str | None = None) -> str | None:
    """A stored timestamp as ISO 8601 with its offset (in `tz` when given)."""
    if dt is None:
        return None
    dt = utc(dt)
    if tz is not None:
        dt = dt.astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz)
    return dt.isoformat()


# Defaults for make_engine: a database that stops answering must fail a request in seconds
# (the caller hears an apology, the finished call goes to the journal), not hang a worker.
CONNECT_TIMEOUT_S = 3.0
STATEMENT_TIMEOUT_S = 5.0
POOL_TIMEOUT_S = 5.0
SQLITE_BUSY_TIMEOUT_S = 5.0


def make_engine(
    url: str,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    statement_timeout_s: float | None = STATEMENT_TIMEOUT_S,
    pool_timeout_s: float = POOL_TIMEOUT_S,
    sqlite_busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
) -> Engine:
    """An engine whose errors never print bound parameters (they carry caller numbers and
    transcript text into logs), with bounded waits:

    - `connect_timeout_s` (PostgreSQL): opening a connection;
    - `statement_timeout_s` (PostgreSQL, None: none): the server cancels a longer statement
      (migrations and long maintenance lift it for their own transaction, see
      `unbounded_statements`);
    - `pool_timeout_s`: waiting for a free pooled connection;
    - `sqlite_busy_timeout_s` (SQLite): waiting for another writer's lock.

    `connect_timeout` or `options` given in a PostgreSQL URL win over these."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
        pool_args = {} if memory else {"pool_timeout": pool_timeout_s}
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_s},
            hide_parameters=True,
            **pool_args,  # type: ignore[arg-type]
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")  # readers (CLI) never block the live service
            cur.close()

        return engine
    connect_args: dict[str, object] = {}
    if url.startswith("postgresql"):
        query = make_url(url).query
        if "connect_timeout" not in query:
            connect_args["connect_timeout"] = max(1, round(connect_timeout_s))
        # A network partition (nothing acknowledged) ends a connection's wait within about
        # 15 s instead of never: TCP keepalives for idle reads, a user timeout for writes.
        connect_args |= {k: v for k, v in TCP_LIVENESS.items() if k not in query}
        if statement_timeout_s is not None and "options" not in query:
            ms = max(1, round(statement_timeout_s * 1000))
            connect_args["options"] = f"-c statement_timeout={ms}"
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=pool_timeout_s,
        hide_parameters=True,
        connect_args=connect_args,
    )


def unbounded_statements(conn: Connection | Session, timeout_s: float | None = None) -> None:
    """Lift the statement timeout (to `timeout_s`, None: no limit) for the current
    transaction only (PostgreSQL; SQLite has none): schema migrations and bulk maintenance
    such as the retention purge may legitimately run longer than a request may."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name == "postgresql":
        ms = 0 if timeout_s is None else max(1, round(timeout_s * 1000))
        conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


MIGRATION_LOCK = 0x76615F6D  # "va_m": pg_advisory_xact_lock key held while migrating


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision and seed the demo business if empty.
    Safe when several workers start at once: one migrates and seeds while the others wait
    for it (a PostgreSQL advisory lock; a file lock beside a SQLite file), then find the
    schema at head and the demo business there, and do nothing."""
    cfg = alembic_config()
    with _migration_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        unbounded_statements(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        with Session(bind=conn) as session:
            seed_demo(session)
            session.flush()


@contextmanager
def _migration_file_lock(engine: Engine) -> Iterator[None]:
    """SQLite has no advisory locks: two processes migrating one file would both create
    the tables. An flock on a file beside the database serializes them."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or "mode=memory" in str(engine.url):
        yield
        return
    try:
        lock = open(f"{database}.migrate-lock", "a")  # noqa: SIM115 - closed below
    except OSError:  # no such directory, read-only: connecting will say what is wrong
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
