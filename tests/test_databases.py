"""The same service on PostgreSQL, and what callers hear when the database is down."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import (
    AUDIO,
    RunningServer,
    ServerThread,
    free_port,
    wait_stored,
)
from tests.pg_support import postgresql_database
from tests.textnorm import heard_as
from voice_agent.replay.calls import place_call
from voice_agent.replay.peer import ring
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server, dropped afterwards."""
    with postgresql_database() as url:
        yield url


async def test_a_call_on_postgresql_is_stored_and_read_back(pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, database_url=pg_url, twilio_auth_token="pg-token")
    with ServerThread(settings) as url:
        server = RunningServer(url=url, settings=settings)
        turns = [AUDIO / "furnace-out.wav", AUDIO / "name-james.wav"]
        result = await place_call(url, "pg-token", turns, fast=True)
        call = await wait_stored(server, result.call_sid)
    # A caller who told of a problem and hung up before a booking leaves a message.
    assert call["status"] == "completed" and call["outcome"] == "message_taken"
    caller = " ".join(s["text"] for s in call["transcript"] if s["speaker"] == "caller")
    assert heard_as(caller, "furnace") and heard_as(caller, "James Carter"), caller
    assert call["started_at"].endswith("+00:00")


def test_service_refuses_to_start_without_its_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    settings = Settings(data_dir=tmp_path, database_url=dead, twilio_auth_token="t")
    # Start-up runs the migrations, so a dead database stops the service before it
    # listens, rather than letting it answer calls it cannot record.
    with pytest.raises(RuntimeError, match="stopped during start-up"), ServerThread(settings):
        pass


async def test_database_lost_while_running_callers_hear_an_apology(server: RunningServer) -> None:
    services = server.services
    healthy_store, healthy_engine = services.calls, services.db
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    from storage.calls import CallStore
    from storage.db import make_engine

    dead_engine = make_engine(dead)
    services.calls, services.db = CallStore(dead_engine), dead_engine
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            health = await http.get(f"{server.url}/healthz")
            assert health.status_code == 503 and "database" in health.json()["status"]
            ringing = await ring(
                http,
                SignatureChecker(server.auth_token),
                server.url,
                "+15555550160",
                "+15550100200",
            )
        root = ET.fromstring(ringing.twiml)
        assert ringing.stream_url is None
        assert (
            "cannot take your call" in root.findtext("Say", "") and root.find("Hangup") is not None
        )
    finally:
        services.calls, services.db = healthy_store, healthy_engine
