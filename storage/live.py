"""Live state shared by the workers behind one phone line: one-time stream tokens, the
registry of active calls, the event bus dispatchers follow, and per-caller rate limits.

Each has an in-process implementation (one worker, no Redis) and a Redis one (REDIS_URL),
behind the same small interface. Redis trouble never ends a call: the registry, the bus
and the limiter log and carry on; only a token that cannot be checked is refused."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

log = logging.getLogger(__name__)


class StreamTokens(Protocol):
    def issue(self, call_sid: str) -> str: ...

    def redeem(self, token: str, call_sid: str) -> bool:
        """True once, for the call the token was issued to, before it expires."""
        ...


class CallRegistry(Protocol):
    def add(self, call_sid: str, info: dict[str, Any]) -> None: ...

    def remove(self, call_sid: str) -> None: ...

    def refresh(self, call_sid: str) -> None:
        """The worker holding the call says it is still live (see RedisRegistry)."""
        ...

    def active(self) -> dict[str, dict[str, Any]]: ...


class EventBus(Protocol):
    def publish(self, business_id: int, event: dict[str, Any]) -> None: ...

    def subscribe(self, business_id: int) -> AsyncIterator[dict[str, Any]]: ...


class WorkerBeats(Protocol):
    """Which worker processes are alive, on any host: each beats while it runs, and a
    worker that stopped beating (killed, its machine gone) is dead once its beat lapses."""

    def beat(self, owner: str, ttl_s: float) -> None: ...

    def alive(self, owner: str) -> bool | None:
        """None: cannot tell (no shared state, or Redis unreachable)."""
        ...


class RateLimiter(Protocol):
    def allow(self, key: str) -> bool:
        """False once `key` (a caller's number) made too many calls in the window."""
        ...


# ---- in-process ---------------------------------------------------------------------------


class InProcessStreamTokens:
    def __init__(self, ttl_s: float = 300.0) -> None:
        self._ttl = ttl_s
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, call_sid: str) -> str:
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (call_sid, now + self._ttl)
        return token

    def redeem(self, token: str, call_sid: str) -> bool:
        with self._lock:
            entry = self._tokens.pop(token, None)
        return entry is not None and entry[0] == call_sid and entry[1] > time.monotonic()


class InProcessRegistry:
    def __init__(self) -> None:
        self._calls: dict[str, dict[str, Any]] = {}

    def add(self, call_sid: str, info: dict[str, Any]) -> None:
        self._calls[call_sid] = info

    def remove(self, call_sid: str) -> None:
        self._calls.pop(call_sid, None)

    def refresh(self, call_sid: str) -> None:
        pass  # the process that would refresh an entry is the one that holds it

    def active(self) -> dict[str, dict[str, Any]]:
        return dict(self._calls)


class InProcessBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._queue_size = queue_size

    def publish(self, business_id: int, event: dict[str, Any]) -> None:
        for inbox in list(self._subscribers.get(business_id, ())):
            if inbox.full():  # a stalled reader loses old events, never blocks a call
                inbox.get_nowait()
            inbox.put_nowait(event)

    async def subscribe(self, business_id: int) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_size)
        self._subscribers[business_id].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[business_id].discard(queue)


class InProcessBeats:
    """One worker: no other worker's beat to see (this host's are checked by pid)."""

    def beat(self, owner: str, ttl_s: float) -> None:
        pass

    def alive(self, owner: str) -> bool | None:
        return None


class InProcessRateLimiter:
    def __init__(self, limit: int = 10, window_s: float = 600.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, list[float]] = defaultdict(list)

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        hits = [t for t in self._hits[key] if t > now - self.window_s]
        hits.append(now)
        self._hits[key] = hits
        return len(hits) <= self.limit


# ---- Redis --------------------------------------------------------------------------------


class RedisStreamTokens:
    """Tokens in Redis, so the stream may reach another worker than the webhook did. With
    Redis unreachable, a token is kept in this process instead: the call is answered (by
    the same worker, as with one process) rather than refused."""

    def __init__(self, client: Any, ttl_s: int = 300) -> None:
        self._redis, self._ttl = client, ttl_s
        self._local = InProcessStreamTokens(ttl_s)

    def issue(self, call_sid: str) -> str:
        token = secrets.token_urlsafe(24)
        try:
            self._redis.set(f"va:token:{token}", call_sid, ex=self._ttl)
        except Exception as exc:
            log.warning("Redis unavailable (%s): stream token kept in-process", type(exc).__name__)
            return self._local.issue(call_sid)
        return token

    def redeem(self, token: str, call_sid: str) -> bool:
        if self._local.redeem(token, call_sid):
            return True
        try:
            owner = self._redis.getdel(f"va:token:{token}")
        except Exception:
            log.exception("stream token could not be checked: Redis unavailable")
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

    def add(self, call_sid: str, info: dict[str, Any]) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self.KEY, call_sid, json.dumps(info))
        pipe.hset(self.SEEN, call_sid, time.time())
        _tolerate(pipe.execute)

    def remove(self, call_sid: str) -> None:
        pipe = self._redis.pipeline()
        pipe.hdel(self.KEY, call_sid)
        pipe.hdel(self.SEEN, call_sid)
        _tolerate(pipe.execute)

    def refresh(self, call_sid: str) -> None:
        _tolerate(lambda: self._redis.hset(self.SEEN, call_sid, time.time()))

    def active(self) -> dict[str, dict[str, Any]]:
        pipe = self._redis.pipeline()
        pipe.hgetall(self.KEY)
        pipe.hgetall(self.SEEN)
        calls, seen = _tolerate(pipe.execute) or ({}, {})
        fresh = time.time() - self._ttl
        lapsed = [sid for sid in calls if float(seen.get(sid, 0)) < fresh]
        for sid in lapsed:
            self.remove(sid.decode())
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
            if _tolerate(lambda c=channel, d=data: self._redis.publish(c, d)) is None:
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

    def __init__(self, client: Any) -> None:
        self._redis = client

    def beat(self, owner: str, ttl_s: float) -> None:
        _tolerate(lambda: self._redis.set(self.PREFIX + owner, 1, px=max(1, int(ttl_s * 1000))))

    def alive(self, owner: str) -> bool | None:
        found = _tolerate(lambda: self._redis.exists(self.PREFIX + owner))
        return None if found is None else bool(found)


class RedisRateLimiter:
    def __init__(self, client: Any, limit: int = 10, window_s: int = 600) -> None:
        self._redis, self.limit, self.window_s = client, limit, window_s

    def allow(self, key: str) -> bool:
        bucket = f"va:rate:{key}:{int(time.time() // self.window_s)}"

        def count() -> int:
            pipe = self._redis.pipeline()
            pipe.incr(bucket)
            pipe.expire(bucket, self.window_s)
            return int(pipe.execute()[0])

        hits = _tolerate(count)
        return hits is None or hits <= self.limit  # Redis down: let the caller through


def _tolerate(op: Any) -> Any:
    try:
        return op()
    except Exception as exc:  # redis.ConnectionError, TimeoutError, ...
        log.warning("Redis unavailable, carrying on without it: %s", type(exc).__name__)
        return None


class LiveState:
    """The five pieces, built from REDIS_URL (or in-process without it)."""

    def __init__(self, redis_url: str | None, rate_limit: int = 10, window_s: int = 600) -> None:
        self.redis_url = redis_url
        if redis_url:
            import redis
            import redis.asyncio

            kw = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
            client = redis.Redis.from_url(redis_url, **kw)
            self._client = client
            self._async = redis.asyncio.Redis.from_url(redis_url, socket_connect_timeout=0.5)
            self.tokens: StreamTokens = RedisStreamTokens(client)
            self.registry: CallRegistry = RedisRegistry(client)
            self.bus: EventBus = RedisBus(client, self._async)
            self.limiter: RateLimiter = RedisRateLimiter(client, rate_limit, window_s)
            self.beats: WorkerBeats = RedisBeats(client)
        else:
            self._client = self._async = None
            self.tokens = InProcessStreamTokens()
            self.registry = InProcessRegistry()
            self.bus = InProcessBus()
            self.limiter = InProcessRateLimiter(rate_limit, window_s)
            self.beats = InProcessBeats()

    # The call path's view: never on the event loop, never longer than OP_TIMEOUT_S.
    OP_TIMEOUT_S = 1.0

    async def add_call(self, call_sid: str, info: dict[str, Any]) -> None:
        await self._off_loop(self.registry.add, call_sid, info)

    async def remove_call(self, call_sid: str) -> None:
        await self._off_loop(self.registry.remove, call_sid)

    async def refresh_call(self, call_sid: str) -> None:
        await self._off_loop(self.registry.refresh, call_sid)

    async def beat(self, owner: str, ttl_s: float) -> None:
        await self._off_loop(self.beats.beat, owner, ttl_s)

    async def active_calls(self) -> dict[str, dict[str, Any]]:
        return await self._off_loop(self.registry.active) or {}

    async def issue_token(self, call_sid: str) -> str:
        return await asyncio.to_thread(self.tokens.issue, call_sid)  # falls back in-process

    async def redeem_token(self, token: str, call_sid: str) -> bool:
        return bool(await self._off_loop(self.tokens.redeem, token, call_sid))

    async def _off_loop(self, op: Any, *args: Any) -> Any:
        if self._client is None:
            return op(*args)  # in-process: a dict, nothing to wait for
        try:
            return await asyncio.wait_for(asyncio.to_thread(op, *args), self.OP_TIMEOUT_S)
        except TimeoutError:
            log.warning("Redis did not answer in %.1f s: carrying on", self.OP_TIMEOUT_S)
            return None

    async def aclose(self) -> None:
        if self._async is not None:
            self.bus.close()  # type: ignore[attr-defined]
            await self._async.aclose()
            self._client.close()
