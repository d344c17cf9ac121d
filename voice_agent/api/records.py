"""/api/bookings, /api/messages, /api/handoffs: what came of the calls."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from voice_agent.api.auth import Dispatcher, Reader, audit_log
from voice_agent.api.common import Limit, Offset, RowId, actor, missing, queries, when
from voice_agent.api.models import BookingOut, HandoffOut, MessageOut, Page

router = APIRouter()


@router.get(
    "/bookings",
    response_model=Page[BookingOut],
    summary="List bookings, soonest first (default: upcoming)",
    tags=["bookings"],
)
async def list_bookings(
    request: Request,
    user: Reader,
    from_: Annotated[
        str | None,
        Query(alias="from", description="ISO date or date-time, business time zone if naive"),
    ] = None,
    to: Annotated[str | None, Query(description="ISO date (whole day) or date-time")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    start, end = when("from", from_), when("to", to)
    return await asyncio.to_thread(
        queries(request).bookings,
        user.business_id,
        start=start,
        end=end,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/messages",
    response_model=Page[MessageOut],
    summary="List messages taken for call-backs, newest first",
    tags=["messages"],
)
async def list_messages(
    request: Request,
    user: Reader,
    handled: Annotated[bool | None, Query(description="only handled, or only unhandled")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await asyncio.to_thread(
        queries(request).messages, user.business_id, handled=handled, limit=limit, offset=offset
    )


@router.post(
    "/messages/{message_id}/handled",
    response_model=MessageOut,
    summary="Mark a message handled (idempotent)",
    tags=["messages"],
    responses=missing("message"),
)
async def mark_message_handled(request: Request, user: Dispatcher, message_id: RowId) -> Any:
    tenant, audit = queries(request), audit_log(request)

    def mark() -> dict[str, Any] | None:
        message = tenant.mark_handled(user.business_id, message_id)
        if message is not None:
            target = f"message:{message_id}"
            audit.record(user.business_id, actor(user), "handle_message", target, user_id=user.id)
        return message

    message = await asyncio.to_thread(mark)
    if message is None:
        raise HTTPException(404, "no such message")
    return message


@router.get(
    "/handoffs",
    response_model=Page[HandoffOut],
    summary="List handoffs to a dispatcher, newest first",
    tags=["handoffs"],
)
async def list_handoffs(
    request: Request, user: Reader, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    return await asyncio.to_thread(
        queries(request).handoffs, user.business_id, limit=limit, offset=offset
    )
