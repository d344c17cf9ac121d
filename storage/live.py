"""Live call state that is not a record: the one-time stream tokens.

In-process here; the same interface can sit on Redis so several workers act as one."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Protocol


class StreamTokens(Protocol):
    def issue(self, call_sid: str) -> str: ...

    def redeem(self, token: str, call_sid: str) -> bool:
        """True once, for the call the token was issued to, before it expires."""
        ...


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
