"""Handoffs this worker made, remembered in memory for a few minutes.

The database decides <Dial> (the stream and the webhook may reach different workers); this
is only what lets /twilio/stream-ended still put the caller through to the dispatcher when
the database cannot be read, instead of hanging up on an emergency."""

from __future__ import annotations

import threading
import time

from storage.profiles import BusinessProfile


class RecentTransfers:
    def __init__(self, ttl_s: float = 600.0) -> None:
        self._ttl = ttl_s
        self._calls: dict[str, tuple[float, BusinessProfile]] = {}
        self._lock = threading.Lock()

    def remember(self, call_sid: str, business: BusinessProfile) -> None:
        now = time.monotonic()
        with self._lock:
            self._calls = {k: v for k, v in self._calls.items() if v[0] > now}
            self._calls[call_sid] = (now + self._ttl, business)

    def dial_for(self, call_sid: str) -> tuple[str, str] | None:
        """Once per call, if we handed it off: (the business line to show as caller id, the
        on-call dispatcher's phone)."""
        with self._lock:
            entry = self._calls.pop(call_sid, None)
        if entry is None or entry[0] <= time.monotonic():
            return None
        business = entry[1]
        dispatcher = business.on_call
        if dispatcher is None or not dispatcher.phone:
            return None
        return business.line, dispatcher.phone
