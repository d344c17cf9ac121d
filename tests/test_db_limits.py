"""What the databases accept and how long they may make us wait, on real SQLite and real
PostgreSQL alike: caller ids longer than E.164, values too long for their column, errors
that do not print caller data, and statements that cannot hang a worker."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from storage.businesses import BusinessStore
from storage.calls import CallStore
from storage.consent import ConsentStore
from storage.db import alembic_config, make_engine, session_factory, upgrade, utc
from storage.fields import MAX_CALLER_ID, caller_id
from storage.models import Call, ConsentRecord, FieldTooLong, Message, TranscriptSegment
from storage.privacy_deletion import delete_caller
from storage.privacy_export import export_caller
from storage.reception import ReceptionStore
from storage.recordings import RecordingStore, load_key
from tests.pg_support import KINDS, migrated_engine, postgresql_database

SIP_ID = "sip:customer-line-7@pbx.example.com:5060"
LINE = "+15550100200"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server, dropped afterwards."""
    with postgresql_database() as url:
        yield url


@pytest.fixture(params=KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of each kind."""
    with migrated_engine(request, tmp_path) as engine:
        yield engine


def demo_business(engine: Engine) -> int:
    return BusinessStore(engine).list()[0]["id"]


# ---- caller ids and column lengths ----------------------------------------------------------


def test_a_sip_caller_id_is_stored_and_read_back(engine: Engine) -> None:
    calls = CallStore(engine)
    calls.open_call("CAsip", demo_business(engine), SIP_ID, f"sip:{LINE}@trunk.example.com")
    context = calls.call_context("CAsip")
    assert context is not None and context[1] == SIP_ID
    ConsentStore(engine).record(demo_business(engine), SIP_ID, True, "call", "Text you?", "CAsip")
    assert ConsentStore(engine).has_opt_in(demo_business(engine), SIP_ID)


def test_an_absurd_caller_id_is_shortened_to_a_stable_form_not_a_driver_error(
    engine: Engine, tmp_path: Path
) -> None:
    """Decision: a caller id over 255 characters still gets its call answered. It is stored
    as its first 180 characters plus its SHA-256 (distinct and stable), and every store and
    the privacy operations apply the same rule, so the same number finds the same rows."""
    huge = "sip:" + "7" * 10_000 + "@pbx.example.com"
    calls = CallStore(engine)
    calls.open_call("CAhuge", demo_business(engine), huge, LINE)
    calls.open_call("CAhuge2", demo_business(engine), huge[:-1] + "n", LINE)
    context = calls.call_context("CAhuge")
    assert context is not None
    stored = context[1]
    assert stored == caller_id(huge) and len(stored) <= MAX_CALLER_ID
    assert stored.startswith("sip:777") and stored != calls.call_context("CAhuge2")[1]  # type: ignore[index]

    ReceptionStore(engine).take_message(
        demo_business(engine),
        "CAhuge",
        {"name": "N" * 1000, "callback_number": huge, "best_time": "t" * 500, "text": "x"},
    )
    with session_factory(engine)() as s:
        message = s.scalar(select(Message))
        assert message is not None and message.callback_number == stored
        assert message.name == "N" * 200 and message.best_time == "t" * 200

    store = RecordingStore(engine, tmp_path / "rec", load_key(None, tmp_path / "k"))
    exported = export_caller(engine, store, demo_business(engine), huge)
    assert [c["call_sid"] for c in exported["calls"]] == ["CAhuge"]
    result = delete_caller(engine, store, demo_business(engine), huge, actor="cli")
    assert result["calls_in_progress"] == 1 and result["messages"] == 1  # still ringing


def test_any_other_value_too_long_for_its_column_is_refused_before_the_driver(
    engine: Engine,
) -> None:
    with pytest.raises(FieldTooLong, match=r"calls\.call_sid: 100 characters \(at most 64\)"):
        CallStore(engine).open_call("CA" + "x" * 98, demo_business(engine), SIP_ID, LINE)
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0


def test_migration_widens_numbers_and_keeps_existing_lines(engine: Engine) -> None:
    """From 0003 with a stored call and transcript: nothing is lost on the way to 0004 (a
    rebuilt `calls` table under SQLite's foreign keys would take its lines with it)."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        for table in reversed(Call.metadata.sorted_tables):
            conn.execute(text(f"DROP TABLE {table.name}"))
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO businesses (name, line, timezone, opening_hours, "
                "recording_enabled, services, service_area, emergency_rules, slot_minutes, "
                "visits_per_slot) VALUES ('B', '+15550100200', 'UTC', '{}', false, '[]', "
                "'[]', '[]', 120, 2)"
            )
        )
        business = conn.execute(text("SELECT id FROM businesses")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO calls (call_sid, business_id, from_number, to_number, status, "
                "started_at, bad_messages) VALUES ('CAold', :b, '+15555550123', "
                "'+15550100200', 'completed', :now, 0)"
            ),
            {"now": now, "b": business},
        )
        call_id = conn.execute(text("SELECT id FROM calls")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO transcript_segments (call_id, seq, speaker, text, start_ms, "
                "end_ms, interrupted) VALUES (:c, 0, 'caller', 'Hello.', 0, 900, false)"
            ),
            {"c": call_id},
        )
    upgrade(engine)
    with session_factory(engine)() as s:
        [line] = s.scalars(select(TranscriptSegment)).all()
        assert line.text == "Hello." and line.provisional is False
        call = s.scalar(select(Call))
        assert call is not None and call.erased is False and call.last_activity_at is None
    if engine.dialect.name == "postgresql":
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("calls")}
        assert columns["from_number"].length == 255 and columns["to_number"].length == 255
        consent = {c["name"]: c["type"] for c in inspect(engine).get_columns("consent_records")}
        assert consent["phone"].length == 255
    CallStore(engine).open_call("CAnew", business, SIP_ID, LINE)
    with session_factory(engine)() as s:
        assert s.scalar(select(Call.from_number).where(Call.call_sid == "CAnew")) == SIP_ID
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 0


# ---- errors and timeouts --------------------------------------------------------------------


def test_errors_do_not_print_bound_parameters(engine: Engine) -> None:
    secret = "+15555550142"
    CallStore(engine).open_call("CAdup", demo_business(engine), secret, LINE)
    insert = text(
        "INSERT INTO calls (call_sid, business_id, from_number, to_number, status, started_at, "
        "bad_messages, erased) VALUES ('CAdup', :b, :number, :line, 'ringing', :at, 0, false)"
    )
    with pytest.raises(DBAPIError) as failed, engine.begin() as conn:
        conn.execute(
            insert,
            {"b": demo_business(engine), "number": secret, "line": LINE, "at": datetime.now(UTC)},
        )
    message = str(failed.value)
    assert "unique" in message.lower() or "duplicate" in message.lower()
    assert secret not in message and secret not in repr(failed.value)
    assert "hidden due to hide_parameters" in message


def test_pool_waits_are_bounded(engine: Engine) -> None:
    assert engine.pool.timeout() == 5.0  # type: ignore[attr-defined]
    custom = make_engine(str(engine.url.render_as_string(hide_password=False)), pool_timeout_s=1)
    try:
        assert custom.pool.timeout() == 1  # type: ignore[attr-defined]
    finally:
        custom.dispose()


def test_a_statement_longer_than_the_timeout_is_cancelled(pg_url: str) -> None:
    engine = make_engine(pg_url, statement_timeout_s=0.3)
    try:
        with (
            pytest.raises(OperationalError, match="statement timeout") as failed,
            engine.connect() as conn,
        ):
            conn.execute(text("SELECT pg_sleep(30), :caller"), {"caller": "+15555550177"})
        assert "+15555550177" not in str(failed.value)
        with engine.connect() as conn:  # the engine is still usable afterwards
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
    finally:
        engine.dispose()


def test_postgresql_defaults_and_a_url_that_says_otherwise(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "5s"
    engine.dispose()
    engine = make_engine(pg_url + "?options=-c%20statement_timeout%3D7000")
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "7s"
    engine.dispose()


def test_postgresql_connections_notice_a_partition(pg_url: str) -> None:
    """TCP keepalives and a user timeout: a connection whose peer vanished (nothing is
    acknowledged) fails within seconds instead of waiting for ever; a URL may say otherwise."""
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    engine.dispose()
    assert params["keepalives"] == "1" and int(params["keepalives_idle"]) <= 10
    assert 0 < int(params["tcp_user_timeout"]) <= 30_000
    engine = make_engine(pg_url + "?tcp_user_timeout=60000")
    with engine.connect() as conn:
        params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    engine.dispose()
    assert params["tcp_user_timeout"] == "60000"


def test_sqlite_waits_for_a_held_write_lock_only_as_long_as_its_busy_timeout(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/voice-agent.db"
    engine = make_engine(url, sqlite_busy_timeout_s=0.2)
    upgrade(engine)
    holder = sqlite3.connect(tmp_path / "voice-agent.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing and does not let go
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            CallStore(engine).open_call("CAbusy", demo_business(engine), SIP_ID, LINE)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    CallStore(engine).open_call("CAbusy", demo_business(engine), SIP_ID, LINE)
    engine.dispose()


def test_call_context_after_open_is_unchanged_for_an_ordinary_number(engine: Engine) -> None:
    calls = CallStore(engine)
    calls.open_call("CAplain", demo_business(engine), " +15555550123 ", LINE)
    context = calls.call_context("CAplain")
    assert context is not None and context[1] == "+15555550123"
    with session_factory(engine)() as s:
        call = s.scalar(select(Call).where(Call.call_sid == "CAplain"))
        assert call is not None and call.last_activity_at is not None
        assert datetime.now(UTC) - utc(call.started_at) < timedelta(hours=1)
