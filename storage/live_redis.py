"""Live state in Redis (REDIS_URL), shared by every worker on every machine.

The call path talks to Redis through redis.asyncio, each command bounded by OP_TIMEOUT_S
(`bounded`), so a slow or partitioned Redis never holds the event loop, nor a thread, and
never a call's audio. Redis trouble is logged and the call goes on: the registry and the
limiter carry on without it, a stream token is kept in-process (the stream then has to
reach the same worker, as with one process), and only a token that cannot be checked
anywhere is refused. Publishing events goes through one thread with a bounded queue, and
the reaper asks whether a worker is alive from its own thread: both use the sync client."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from storage.live_local import InProcessStreamTokens

log = logging.getLogger(__name__)

OP_TIMEOUT_S = 1.0
T = TypeVar("T")


async def bounded(op: Awaitable[T], what: str) -> T | None:
    """`op`'s result, or None (logged) when Redis fails or takes over OP_TIMEOUT_S."""
    try:
        return await asyncio.wait_for(op, OP_TIMEOUT_S)
    except TimeoutError:
        log.warning("Redis did not answer in %.1f s (%s): carrying on", OP_TIMEOUT_S, what)
    except Exception as exc:  # redis.ConnectionError, ResponseError, OSError, ...
        log.warning("Redis unavailable (%s: %s): carrying on without it", what, type(exc).__name__)
    return None


def tolerate(op: Callable[[], T]) -> T | None:
    """The sync client's version, for the publisher's and the reaper's threads."""
    try:
        return op()
    except Exception as exc:
        log.warning("Redis unavailable, carrying on without it: %s", type(exc).__name__)
        return None


class RedisStreamTokens:
    """Tokens in Redis, so the stream may reach another worker than the webhook did."""

    def __init__(self, client: Any, ttl_s: int = 300) -> None:
        self._redis, self._ttl = client, ttl_s
        self._local = InProcessStreamTokens(ttl_s)

    async def issue(self, call_sid: str) -> str:
        token = secrets.token_urlsafe(24)
        stored = await bounded(
            self._redis.set(f"va:token:{token}", call_sid, ex=self._ttl), "token"
        )
        if stored is None:
            log.warning("stream token for %s kept in this worker only", call_sid)
            return self._local.issue_now(call_sid)
        return token

    async def redeem(self, token: str, call_sid: str) -> bool:
        if self._local.redeem_now(token, call_sid):
            return True
        try:
            owner = await asyncio.wait_for(self._redis.getdel(f"va:token:{token}"), OP_TIMEOUT_S)
        except Exception as exc:
            log.error(
                "stream token could not be checked: Redis unavailable (%s)", type(exc).__name__
            )
            return False
        return owner is not None and owner.decode() == call_sid


class RedisRegistry:
    """A hash of active calls and a hash of when each was last refreshed. The worker with
    the call refreshes it every heartbeat, so an entry whose removal was lost (Redis away
    at that moment, a worker killed) lapses after `ttl_s` instead of staying a ghost."""

    KEY = "va:active_calls"
    SEEN = "va:active_calls:seen"

    def __init__(self, client: Any, ttl_s: float = 120.0) -> None:
        self._redis, self._ttl = client, ttl_s

    async def add(self, call_sid: str, info: dict[str, Any]) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self.KEY, call_sid, json.dumps(info))
        pipe.hset(self.SEEN, call_sid, time.time())
        await bounded(pipe.execute(), "registry add")

    async def remove(self, call_sid: str) -> None:
        pipe = self._redis.pipeline()
        pipe.hdel(self.KEY, call_sid)
        pipe.hdel(self.SEEN, call_sid)
        await bounded(pipe.execute(), "registry remove")

    async def refresh(self, call_sids: list[str]) -> None:
        """One round trip for all of a worker's calls."""
        if call_sids:
            now = time.time()
            await bounded(
                self._redis.hset(self.SEEN, mapping=dict.fromkeys(call_sids, now)), "refresh"
            )

    async def active(self) -> dict[str, dict[str, Any]]:
        pipe = self._redis.pipeline()
        pipe.hgetall(self.KEY)
        pipe.hgetall(self.SEEN)
        calls, seen = await bounded(pipe.execute(), "registry") or ({}, {})
        fresh = time.time() - self._ttl
        lapsed = [sid for sid in calls if float(seen.get(sid, 0)) < fresh]
        for sid in lapsed:
            await self.remove(sid.decode())
        return {k.decode(): json.loads(v) for k, v in calls.items() if k not in lapsed}


class RedisBus:
    """Pub/sub per business, so a console on any worker sees calls handled by another.
    Publishing never waits on Redis: events go through a bounded queue to one thread (a
    partitioned Redis stalled every call's audio when this ran on the event loop)."""

    def __init__(self, client: Any, async_client: Any, capacity: int = 10_000) -> None:
        self._redis, self._async = client, async_client
        self._outbox: queue.Queue[tuple[str, str] | None] = queue.Queue(capacity)
        self.dropped = 0
        self._thread = threading.Thread(target=self._send, name="redis-bus", daemon=True)
        self._thread.start()

    def publish(self, business_id: int, event: dict[str, Any]) -> None:
        data = json.dumps(event, default=str)
        try:
            self._outbox.put_nowait((f"va:events:{business_id}", data))
        except queue.Full:
            self.dropped += 1

    def _send(self) -> None:
        while (item := self._outbox.get()) is not None:
            channel, data = item
            if tolerate(lambda c=channel, d=data: self._redis.publish(c, d)) is None:
                self.dropped += 1

    def close(self) -> None:
        self._outbox.put(None)
        self._thread.join(timeout=2)

    async def subscribe(self, business_id: int) -> AsyncIterator[dict[str, Any]]:
        pubsub = self._async.pubsub()
        await pubsub.subscribe(f"va:events:{business_id}")
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield json.loads(message["data"])
        finally:
            await pubsub.aclose()


class RedisBeats:
    PREFIX = "va:worker:"

    def __init__(self, async_client: Any, client: Any) -> None:
        self._async, self._redis = async_client, client

    async def beat(self, owner: str, ttl_s: float) -> None:
        ms = max(1, int(ttl_s * 1000))
        await bounded(self._async.set(self.PREFIX + owner, 1, px=ms), "worker beat")

    def alive(self, owner: str) -> bool | None:
        """From the reaper's thread: None when Redis cannot tell."""
        found = tolerate(lambda: self._redis.exists(self.PREFIX + owner))
        return None if found is None else bool(found)


class RedisRateLimiter:
    def __init__(self, client: Any, limit: int = 10, window_s: int = 600) -> None:
        self._redis, self.limit, self.window_s = client, limit, window_s

    async def allow(self, key: str) -> bool:
        bucket = f"va:rate:{key}:{int(time.time() // self.window_s)}"
        pipe = self._redis.pipeline()
        pipe.incr(bucket)
        pipe.expire(bucket, self.window_s)
        counted = await bounded(pipe.execute(), "rate limit")
        return counted is None or int(counted[0]) <= self.limit  # Redis down: let callers in
