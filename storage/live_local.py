"""Live state in one process (no REDIS_URL): a single worker needs nothing shared. Also the
fallback the Redis pieces use for a stream token when Redis cannot be reached."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any


class InProcessStreamTokens:
    def __init__(self, ttl_s: float = 300.0) -> None:
        self._ttl = ttl_s
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue_now(self, call_sid: str) -> str:
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (call_sid, now + self._ttl)
        return token

    def redeem_now(self, token: str, call_sid: str) -> bool:
        with self._lock:
            entry = self._tokens.pop(token, None)
        return entry is not None and entry[0] == call_sid and entry[1] > time.monotonic()

    async def issue(self, call_sid: str) -> str:
        return self.issue_now(call_sid)

    async def redeem(self, token: str, call_sid: str) -> bool:
        return self.redeem_now(token, call_sid)


class InProcessRegistry:
    def __init__(self) -> None:
        self._calls: dict[str, dict[str, Any]] = {}

    async def add(self, call_sid: str, info: dict[str, Any]) -> None:
        self._calls[call_sid] = info

    async def remove(self, call_sid: str) -> None:
        self._calls.pop(call_sid, None)

    async def refresh(self, call_sids: list[str]) -> None:
        pass  # the process that would refresh an entry is the one that holds it

    async def active(self) -> dict[str, dict[str, Any]]:
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

    async def beat(self, owner: str, ttl_s: float) -> None:
        pass

    def alive(self, owner: str) -> bool | None:
        return None


class InProcessRateLimiter:
    def __init__(self, limit: int = 10, window_s: float = 600.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, list[float]] = defaultdict(list)

    async def allow(self, key: str) -> bool:
        now = time.monotonic()
        hits = [t for t in self._hits[key] if t > now - self.window_s]
        hits.append(now)
        self._hits[key] = hits
        return len(hits) <= self.limit
