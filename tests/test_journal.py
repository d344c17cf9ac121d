"""A database that is down when a call ends loses nothing: the finished call waits in the
journal under the data directory and is stored once the database is back."""

from __future__ import annotations

import asyncio

import httpx

from storage.calls import CallStore
from storage.db import make_engine
from tests.conftest import AUDIO, RunningServer, free_port, stored, wait_stored
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import caller_turn, wait_for_answer
from voice_agent.replay.peer import connect_stream, ring
from voice_agent.twilio.signatures import SignatureChecker


async def test_call_ending_during_an_outage_is_journaled_then_stored(
    server: RunningServer,
) -> None:
    services = server.services
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550142", "+15550100200")
    healthy = services.calls
    dead = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x?connect_timeout=1")
    try:
        async with connect_stream(ringing, signer, fast=True) as peer:
            assert await wait_for_answer(peer, 30)
            mulaw = load_turn(AUDIO / "hours-question.wav")
            assert (await caller_turn(peer, "hours", mulaw, 30)).latency_ms is not None
            services.calls = CallStore(dead)  # the database goes away before the call ends
        for _ in range(1200):  # a minute at least
            if services.journal.pending():
                break
            await asyncio.sleep(0.05)
        [journaled] = services.journal.pending()
        assert ringing.call_sid in journaled.name
        assert stored(server, ringing.call_sid)["status"] == "in_progress"
        assert services.journal.replay(services.calls) == 0, "still down: kept for later"
    finally:
        services.calls = healthy
        dead.dispose()
    assert await asyncio.to_thread(services.journal.replay, services.calls) == 1
    call = await wait_stored(server, ringing.call_sid)
    assert call["outcome"] == "answered" and not services.journal.pending()
    assert any("open" in s["text"].lower() for s in call["transcript"] if s["speaker"] == "caller")


async def test_a_flood_from_one_caller_is_refused_politely(server: RunningServer) -> None:
    limiter = server.services.live.limiter
    limit, limiter.limit = limiter.limit, 2
    try:
        signer = SignatureChecker(server.auth_token)
        async with httpx.AsyncClient() as http:
            answers = [
                await ring(http, signer, server.url, "+15555550143", "+15550100200")
                for _ in range(3)
            ]
            other = await ring(http, signer, server.url, "+15555550144", "+15550100200")
        assert [a.stream_url is not None for a in answers] == [True, True, False]
        assert "many calls" in answers[2].twiml
        assert other.stream_url is not None, "other callers are not affected"
    finally:
        limiter.limit = limit
