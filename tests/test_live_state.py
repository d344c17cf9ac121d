"""Live state on real Redis and in-process: the same behaviour behind one interface."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
import redis

from storage.live import LiveState
from tests.conftest import require_service

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        require_service("Redis at 127.0.0.1:6379", str(exc))
    return REDIS_URL


@pytest.fixture(params=["in-process", "redis"])
def live(request):  # type: ignore[no-untyped-def]
    return LiveState(redis_or_skip() if request.param == "redis" else None, rate_limit=3)


async def test_tokens_are_one_time_and_bound_to_their_call(live: LiveState) -> None:
    sid = "CA" + secrets.token_hex(8)
    token = await live.tokens.issue(sid)
    assert not await live.tokens.redeem(token, "CAother")
    assert not await live.tokens.redeem(token, sid), "spent by the wrong call"
    token = await live.tokens.issue(sid)
    assert await live.tokens.redeem(token, sid) and not await live.tokens.redeem(token, sid)
    await live.aclose()


async def test_registry_lists_active_calls(live: LiveState) -> None:
    sid = "CA" + secrets.token_hex(8)
    await live.registry.add(sid, {"business_id": 1, "from": "+15555550123"})
    assert (await live.registry.active())[sid]["business_id"] == 1
    await live.registry.remove(sid)
    assert sid not in await live.registry.active()
    await live.aclose()


async def test_rate_limit_per_caller(live: LiveState) -> None:
    caller = "+1555" + str(secrets.randbelow(10**7)).zfill(7)
    assert [await live.limiter.allow(caller) for _ in range(4)] == [True, True, True, False]
    assert await live.limiter.allow(caller + "9")
    await live.aclose()


async def test_events_reach_subscribers_of_that_business_only(live: LiveState) -> None:
    business = secrets.randbelow(10**6) + 10
    got: list[dict] = []
    ready = asyncio.Event()

    async def follow() -> None:
        stream = live.bus.subscribe(business)
        ready.set()
        async for event in stream:
            got.append(event)
            if event["type"] == "call.ended":
                return

    task = asyncio.create_task(follow())
    await ready.wait()
    for _ in range(3000):  # pub/sub has no backlog: publish once the subscription is live
        await asyncio.sleep(0.02)
        live.bus.publish(business + 1, {"type": "call.started", "call_sid": "CAother"})
        live.bus.publish(business, {"type": "call.started", "call_sid": "CA1"})
        if got:
            break
    live.bus.publish(business, {"type": "call.ended", "call_sid": "CA1"})
    await asyncio.wait_for(task, 10)
    assert {e["call_sid"] for e in got} == {"CA1"}
    await live.aclose()


async def test_redis_going_away_does_not_raise(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dead = LiveState("redis://127.0.0.1:1/0")  # nothing listens there
    await dead.registry.add("CA1", {})
    await dead.registry.refresh(["CA1"])
    await dead.registry.remove("CA1")
    await dead.beats.beat("host:1:x", 3.0)
    dead.bus.publish(1, {"type": "call.started"})
    assert await dead.registry.active() == {}
    assert dead.beats.alive("host:1:x") is None, "cannot tell, so nobody is taken for dead"
    assert await dead.limiter.allow("+15555550123"), "callers are not refused for our outage"
    assert not await dead.tokens.redeem("anything", "CA1"), "an unverifiable token is refused"
    token = await dead.tokens.issue("CA2")  # kept in this worker: its stream is still served
    assert await dead.tokens.redeem(token, "CA2")
    await dead.aclose()


async def test_a_call_whose_removal_was_lost_lapses_unless_refreshed() -> None:
    """Redis away when a call ended (or its worker killed): the entry is not a ghost for
    good. Entries the holding worker refreshes stay."""
    import redis.asyncio

    from storage.live_redis import RedisRegistry

    client = redis.Redis.from_url(redis_or_skip())
    registry = RedisRegistry(redis.asyncio.Redis.from_url(REDIS_URL), ttl_s=60)
    ghost, live_sid = "CA" + secrets.token_hex(8), "CA" + secrets.token_hex(8)
    await registry.add(ghost, {"business_id": 1})
    await registry.add(live_sid, {"business_id": 1})
    # Both were added two minutes ago; only the live one has been refreshed since.
    client.hset(RedisRegistry.SEEN, ghost, time.time() - 120)
    client.hset(RedisRegistry.SEEN, live_sid, time.time() - 120)
    await registry.refresh([live_sid])
    active = await registry.active()
    assert live_sid in active and ghost not in active
    assert not client.hexists(RedisRegistry.KEY, ghost), "the lapsed entry is removed"
    await registry.remove(live_sid)
