"""Shutting a worker down without cutting a call off (SIGTERM, as a deployment sends it).

1. `/healthz` says "draining", so the balancer takes the worker out of rotation; anything
   still sent here (a stream whose webhook this worker answered) is served as usual.
2. Calls in progress go on, up to `drain_timeout_s`.
3. Calls still going then hear a goodbye and are closed once it was heard; each is stored
   as every call is when its stream ends (a message is taken from the caller's words).
4. Once no call is left (and none arrived for `drain_settle_s`) the worker may exit."""

from __future__ import annotations

import asyncio
import logging
import time

from voice_agent.services import Services

log = logging.getLogger(__name__)

GOODBYE = (
    "I'm sorry, I have to end this call now. If we didn't finish, we'll call you back, "
    "or please call us again. Goodbye."
)
GOODBYE_GRACE_S = 30.0  # the goodbye said and heard, the record stored


async def drain(
    services: Services,
    timeout_s: float | None = None,
    settle_s: float | None = None,
    poll_s: float = 0.1,
) -> int:
    """Returns how many calls had to be wound up with the goodbye."""
    settings = services.settings
    timeout_s = settings.drain_timeout_s if timeout_s is None else timeout_s
    settle_s = settings.drain_settle_s if settle_s is None else settle_s
    services.draining = True
    log.warning(
        "draining: %d call(s) in progress may go on for up to %.0f s",
        len(services.sessions),
        timeout_s,
    )
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if services.sessions:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= settle_s:
            log.info("drained: no call in progress")
            return 0
        await asyncio.sleep(poll_s)
    wound_up = [sid for sid, s in list(services.sessions.items()) if s.wind_up(GOODBYE)]
    log.warning("drain bound reached: told %d call(s) goodbye", len(wound_up))
    for _ in range(int(GOODBYE_GRACE_S / poll_s)):
        if not services.sessions:
            break
        await asyncio.sleep(poll_s)
    if services.sessions:  # the line never played the goodbye: the server closes them
        log.error("%d call(s) still open after the goodbye", len(services.sessions))
    return len(wound_up)
