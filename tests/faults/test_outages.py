"""PostgreSQL and Redis going away under a running service, through a proxy the tests
control (refused: a server that is down; blackholed: a network partition). For each: what
the caller hears, what is stored, and that the server keeps answering."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import AUDIO, RunningServer, ServerThread, require_service, wait_stored
from tests.faults.proxy import FaultProxy
from tests.pg_support import database_url
from voice_agent.replay import caller_turn, connect_stream, load_turn, post_signed, ring
from voice_agent.settings import Settings
from voice_agent.twilio_auth import SignatureChecker

LINE = "+15550100200"


@pytest.fixture
def pg_proxy(tmp_path: Path) -> Iterator[tuple[FaultProxy, str]]:
    """A fresh PostgreSQL database reached through a proxy: (proxy, URL through it)."""
    with database_url("postgresql", tmp_path) as url, FaultProxy("127.0.0.1", 5432) as proxy:
        yield proxy, url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis at 127.0.0.1:6379", str(exc))
    with FaultProxy("127.0.0.1", 6379) as proxy:
        yield proxy


def _server(tmp_path: Path, **settings: object) -> tuple[ServerThread, Settings]:
    config = Settings(data_dir=tmp_path / "data", twilio_auth_token="faults-token", **settings)
    return ServerThread(config), config


async def _greeted(peer) -> None:  # type: ignore[no-untyped-def]
    """Line silence until the greeting's audio arrives: the call is set up and answered."""
    for _ in range(3000):
        if peer.agent_frames:
            return
        await peer.send_audio(b"\xff" * 160)
        await asyncio.sleep(0.01)
    raise AssertionError("the agent never greeted")


async def _say(peer, wav: str) -> float:  # type: ignore[no-untyped-def]
    """The caller says one fixture turn; returns seconds of agent audio that came back."""
    result = await caller_turn(peer, wav, load_turn(AUDIO / wav), timeout_s=30)
    return result.agent_audio_s


async def test_database_refused_mid_call_caller_still_answered_and_call_kept(
    pg_proxy: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    """The database goes down after the call is answered. The caller is still answered in
    the same turn (no dead air), Twilio gets TwiML after the stream (not a 500), and the
    whole call, words included, reaches the database once it is back."""
    proxy, url = pg_proxy
    thread, settings = _server(tmp_path, database_url=url)
    signer = SignatureChecker(settings.auth_token())
    with thread as base:
        server = RunningServer(base, settings, thread.app)
        async with httpx.AsyncClient() as http:
            ringing = await ring(http, signer, base, "+15555550180", LINE)
            async with connect_stream(ringing, signer, fast=True) as peer:
                await _greeted(peer)
                proxy.refuse()
                heard = await _say(peer, "sink-clogged.wav")
                assert heard > 0.3, "the caller heard nothing after speaking"
                heard = await _say(peer, "name-maria.wav")
                assert heard > 0.3, "the caller heard nothing after the second turn"
            params = {**ringing.params, "CallStatus": "in-progress"}
            twiml = await post_signed(http, signer, f"{base}/twilio/stream-ended", params)
            root = ET.fromstring(twiml)
            assert root.find("Hangup") is not None or root.find("Dial") is not None
            services = server.services
            for _ in range(200):
                if services.journal.pending():
                    break
                await asyncio.sleep(0.1)
            assert services.journal.pending(), "the finished call was neither stored nor kept"
            proxy.heal()
            await asyncio.to_thread(services.journal.replay, services.calls)
            call = await wait_stored(server, ringing.call_sid)
    caller = [s["text"] for s in call["transcript"] if s["speaker"] == "caller"]
    assert len(caller) >= 2, call["transcript"]  # both turns' words, said while it was down


async def test_database_partitioned_health_says_so_and_calls_end(
    pg_proxy: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    """Packets to the database dropped: /healthz answers 503 instead of hanging, and a call
    in progress still ends and is journaled instead of waiting on the database for ever."""
    proxy, url = pg_proxy
    thread, settings = _server(tmp_path, database_url=url)
    signer = SignatureChecker(settings.auth_token())
    with thread as base:
        server = RunningServer(base, settings, thread.app)
        async with httpx.AsyncClient() as http:
            ringing = await ring(http, signer, base, "+15555550181", LINE)
            async with connect_stream(ringing, signer, fast=True) as peer:
                await _greeted(peer)
                proxy.blackhole()
                heard = await _say(peer, "sink-clogged.wav")
                assert heard > 0.3, "the caller heard nothing after speaking"
            health = await http.get(f"{base}/healthz", timeout=60)
            assert health.status_code == 503
            services = server.services
            for _ in range(600):
                if services.journal.pending():
                    break
                await asyncio.sleep(0.1)
            assert services.journal.pending(), "the finished call was neither stored nor kept"
            proxy.heal()


async def test_redis_refused_calls_are_still_answered(
    redis_proxy: FaultProxy, tmp_path: Path
) -> None:
    """With Redis down, the incoming call gets its stream (not a 500), and the call goes on
    and is stored: live state falls back to this process."""
    redis_proxy.refuse()
    thread, settings = _server(tmp_path, redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")
    signer = SignatureChecker(settings.auth_token())
    with thread as base:
        server = RunningServer(base, settings, thread.app)
        async with httpx.AsyncClient() as http:
            ringing = await ring(http, signer, base, "+15555550182", LINE)
            assert ringing.stream_url, ringing.twiml
            async with connect_stream(ringing, signer, fast=True) as peer:
                assert await _say(peer, "sink-clogged.wav") > 0.3
            call = await wait_stored(server, ringing.call_sid)
            health = await http.get(f"{base}/healthz", timeout=30)
    assert call["status"] == "completed"
    assert health.status_code == 200


async def test_redis_partitioned_mid_call_the_call_goes_on(
    redis_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Redis stops answering mid-call: the caller is still answered, the call is stored, and
    the active-call registry does not keep a ghost once Redis is back."""
    thread, settings = _server(tmp_path, redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")
    signer = SignatureChecker(settings.auth_token())
    with thread as base:
        server = RunningServer(base, settings, thread.app)
        async with httpx.AsyncClient() as http:
            ringing = await ring(http, signer, base, "+15555550183", LINE)
            async with connect_stream(ringing, signer, fast=True) as peer:
                await _greeted(peer)
                redis_proxy.blackhole()
                assert await _say(peer, "sink-clogged.wav") > 0.3
                assert await _say(peer, "name-maria.wav") > 0.3
            call = await wait_stored(server, ringing.call_sid)
            health = await http.get(f"{base}/healthz", timeout=30)
            assert health.status_code == 200
    assert call["status"] == "completed"
    assert [s for s in call["transcript"] if s["speaker"] == "caller"]


async def test_database_refused_a_caller_asking_for_a_person_is_still_put_through(
    pg_proxy: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    """The handoff row cannot be written, yet the agent says its transfer line, closes the
    stream, and /twilio/stream-ended dials the on-call dispatcher from this worker's memory."""
    proxy, url = pg_proxy
    thread, settings = _server(tmp_path, database_url=url)
    signer = SignatureChecker(settings.auth_token())
    with thread as base:
        async with httpx.AsyncClient() as http:
            ringing = await ring(http, signer, base, "+15555550184", LINE)
            async with connect_stream(ringing, signer, fast=True) as peer:
                await _greeted(peer)
                proxy.refuse()
                heard = await _say(peer, "talk-to-person.wav")
                assert heard > 0.3, "the caller heard nothing after asking for a person"
                for _ in range(600):
                    if peer.closed.is_set():
                        break
                    await peer.send_audio(b"\xff" * 160)
                    await asyncio.sleep(0.02)
                assert peer.closed.is_set(), "the agent never handed the call over"
            params = {**ringing.params, "CallStatus": "in-progress"}
            twiml = await post_signed(http, signer, f"{base}/twilio/stream-ended", params)
    dial = ET.fromstring(twiml).find("Dial")
    assert dial is not None, twiml
    assert (dial.findtext("Number") or "").startswith("+1"), twiml
