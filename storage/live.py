"""Live state shared by the workers behind one phone line: one-time stream tokens, the
registry of active calls, the event bus dispatchers follow, and per-caller rate limits.

Each has an in-process implementation (storage.live_local: one worker, no Redis) and a
Redis one (storage.live_redis: REDIS_URL, every call bounded in time), behind the same
small interface. Redis trouble never ends a call: the registry, the bus and the limiter log
and carry on; only a token that cannot be checked is refused."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from storage import live_local, live_redis

log = logging.getLogger(__name__)


class StreamTokens(Protocol):
    async def issue(self, call_sid: str) -> str: ...

    async def redeem(self, token: str, call_sid: str) -> bool:
        """True once, for the call the token was issued to, before it expires."""
        ...


class CallRegistry(Protocol):
    async def add(self, call_sid: str, info: dict[str, Any]) -> None: ...

    async def remove(self, call_sid: str) -> None: ...

    async def refresh(self, call_sids: list[str]) -> None:
        """The worker holding these calls says they are still live (see RedisRegistry)."""
        ...

    async def active(self) -> dict[str, dict[str, Any]]: ...


class EventBus(Protocol):
    def publish(self, business_id: int, event: dict[str, Any]) -> None: ...

    def subscribe(self, business_id: int) -> AsyncIterator[dict[str, Any]]: ...


class WorkerBeats(Protocol):
    """Which worker processes are alive, on any host: each beats while it runs, and a
    worker that stopped beating (killed, its machine gone) is dead once its beat lapses."""

    async def beat(self, owner: str, ttl_s: float) -> None: ...

    def alive(self, owner: str) -> bool | None:
        """Synchronous (the reaper's thread). None: cannot tell (no shared state, or Redis
        unreachable)."""
        ...


class RateLimiter(Protocol):
    async def allow(self, key: str) -> bool:
        """False once `key` (a caller's number) made too many calls in the window."""
        ...


class LiveState:
    """The five pieces, built from REDIS_URL (or in-process without it)."""

    def __init__(self, redis_url: str | None, rate_limit: int = 10, window_s: int = 600) -> None:
        self.redis_url = redis_url
        self._client: Any = None
        self._async: Any = None
        if redis_url:
            import redis
            import redis.asyncio

            timeouts = {
                "socket_timeout": live_redis.OP_TIMEOUT_S,
                "socket_connect_timeout": live_redis.OP_TIMEOUT_S,
            }
            self._client = redis.Redis.from_url(redis_url, **timeouts)
            # No socket timeout on the async client: a pub/sub subscriber waits on its
            # socket for as long as no event comes; each command is bounded by wait_for.
            self._async = redis.asyncio.Redis.from_url(
                redis_url, socket_connect_timeout=live_redis.OP_TIMEOUT_S
            )
            self.tokens: StreamTokens = live_redis.RedisStreamTokens(self._async)
            self.registry: CallRegistry = live_redis.RedisRegistry(self._async)
            self.bus: EventBus = live_redis.RedisBus(self._client, self._async)
            self.limiter: RateLimiter = live_redis.RedisRateLimiter(
                self._async, rate_limit, window_s
            )
            self.beats: WorkerBeats = live_redis.RedisBeats(self._async, self._client)
        else:
            self.tokens = live_local.InProcessStreamTokens()
            self.registry = live_local.InProcessRegistry()
            self.bus = live_local.InProcessBus()
            self.limiter = live_local.InProcessRateLimiter(rate_limit, window_s)
            self.beats = live_local.InProcessBeats()

    async def aclose(self) -> None:
        if self._async is not None:
            self.bus.close()  # type: ignore[attr-defined]
            await self._async.aclose()
            self._client.close()
