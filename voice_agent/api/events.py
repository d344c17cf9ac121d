"""GET /api/events: a business's live feed as Server-Sent Events, for the dispatcher console.

Each event on the bus (`services.live.bus`, in-process or Redis pub/sub, so a console on one
worker sees the calls another worker handles) goes out as

    event: call.transcript
    data: {"type": "call.transcript", "call_sid": "CA…", "data": {…}}

with a `: keep-alive` comment after every ~15 s of quiet, so proxies and phones keep the
connection open. Types: call.started, call.transcript, call.handoff, call.ended,
booking.created, message.created (from the call and the Notifier), handoff.claimed (from
the console's claim endpoint). The stream is the user's business only: the bus is
subscribed per business, with the business taken from the token, never from the request.

Authentication: `Authorization: Bearer va_…`, like the rest of /api. A browser's
EventSource cannot set headers, so `?token=va_…` is accepted as well. The token is taken
out of the request's query string before the response starts, so uvicorn's access log (and
anything else that prints the URL later) never sees it; a reverse proxy in front of the
service logs URLs on its own, so prefer the header (the console reads the stream with
fetch() and the header for that reason).

Opening a stream is audited (`follow_live_feed`): live transcripts are transcripts. The
stream ends when the client goes away (the server cancels the response; the subscription
is dropped), when the bus subscription fails (the `retry:` hint asks for 3 s before the
reconnect), and after 10 minutes (`: reconnect`), so that a disabled token does not follow
the business for ever; a client reconnects and refreshes what it shows. A server shutting
down waits for open streams unless uvicorn is given `timeout_graceful_shutdown`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, ClassVar
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.types import Scope

from storage.live import EventBus
from storage.users import UserInfo
from voice_agent.api.deps import Audit, Bus, Users, actor, bearer, unauthorized
from voice_agent.api.params import UNAUTHORIZED
from voice_agent.services import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["events"])

QUEUE_SIZE = 1000  # per client; a stalled one loses its oldest events, never blocks a call
RETRY_MS = 3000
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")  # also keeps newlines out of `event:`


def scrub_token(scope: Scope) -> None:
    """Drop `token=` from the query string, in place: uvicorn's access log reads this very
    scope when the response starts."""
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return
    kept = [  # names are compared decoded: `%74oken=` is `token=` to the query parser
        part
        for part in raw.split(b"&")
        if unquote_plus(part.split(b"=", 1)[0].decode("latin-1")).lower() != "token"
    ]
    scope["query_string"] = b"&".join(p for p in kept if p)


async def feed_user(
    request: Request,
    users: Users,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    token: Annotated[
        str | None,
        Query(  # no max_length: a 422 would answer before the token is scrubbed
            description="The bearer token, for EventSource clients that cannot send headers "
            "(removed from the URL before anything is logged). Prefer the header.",
        ),
    ] = None,
) -> UserInfo:
    scrub_token(request.scope)
    secret = credentials.credentials if credentials is not None else token
    if not secret:
        raise unauthorized()
    user = await asyncio.to_thread(users.authenticate, secret)
    if user is None:
        raise unauthorized("invalid_token")
    if not user.can("dispatcher"):
        raise HTTPException(403, "this needs the dispatcher role or higher")
    return user


def sse_frame(event: dict[str, Any]) -> str | None:
    """One event as an SSE frame, or None for something that is not an event."""
    kind = event.get("type")
    if not isinstance(kind, str) or not EVENT_TYPE.fullmatch(kind):
        return None
    body = {"type": kind, "call_sid": event.get("call_sid"), "data": event.get("data") or {}}
    return f"event: {kind}\ndata: {json.dumps(body, default=str, separators=(',', ':'))}\n\n"


class Feed:
    """One client's events. The bus is read by a task of its own, so that waiting with a
    timeout (for the keep-alive) never cancels the bus's generator halfway through a step;
    `close()` cancels that task, which ends the subscription (and its finally) there."""

    _END: ClassVar[dict[str, Any]] = {}  # compared by identity

    def __init__(self, bus: EventBus, business_id: int) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._task = asyncio.create_task(self._pump(bus, business_id))

    async def _pump(self, bus: EventBus, business_id: int) -> None:
        try:
            async for event in bus.subscribe(business_id):
                self._put(event)
        except Exception as exc:  # Redis gone: end the stream, the client reconnects
            log.warning("live feed of business %s lost: %s", business_id, type(exc).__name__)
        finally:
            self._put(self._END)

    def _put(self, event: dict[str, Any]) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    async def next(self, timeout_s: float) -> dict[str, Any] | None:
        """The next event; None once the subscription has ended. TimeoutError when quiet."""
        event = await asyncio.wait_for(self._queue.get(), timeout_s)
        return None if event is self._END else event

    def close(self) -> None:
        self._task.cancel()


async def sse_stream(
    bus: EventBus, business_id: int, keepalive_s: float, max_age_s: float
) -> AsyncIterator[str]:
    feed = Feed(bus, business_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_age_s
    try:
        await asyncio.sleep(0)  # the pump's first step subscribes (in-process: at once)
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            left = deadline - loop.time()
            if left <= 0:
                yield ": reconnect\n\n"
                return
            try:
                event = await feed.next(min(keepalive_s, left))
            except TimeoutError:
                if loop.time() < deadline:
                    yield ": keep-alive\n\n"
                continue
            if event is None:
                return
            frame = sse_frame(event)
            if frame is not None:
                yield frame
    finally:
        feed.close()


@router.get(
    "/events",
    summary="The live feed of your business (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`event: <type>` and `data: {type, call_sid, data}` per event",
        },
        **UNAUTHORIZED,
    },
)
async def events(
    user: Annotated[UserInfo, Depends(feed_user)],
    services: ServicesDep,
    bus: Bus,
    audit: Audit,
) -> StreamingResponse:
    # Live transcripts are transcripts: following them is audited, once per stream.
    await asyncio.to_thread(
        audit.record, user.business_id, actor(user), "follow_live_feed", user_id=user.id
    )
    log.info("live feed opened: business %s, user %s", user.business_id, user.id)
    return StreamingResponse(
        sse_stream(bus, user.business_id, services.sse_keepalive_s, services.sse_max_age_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
