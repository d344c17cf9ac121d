"""/api/bookings, /api/messages, /api/handoffs: what came of the calls."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from voice_agent.api.deps import Audit, Dispatcher, Queries, Reader, actor
from voice_agent.api.models import BookingOut, HandoffOut, MessageOut, Page
from voice_agent.api.params import Limit, Offset, RowId, missing, when

router = APIRouter()


@router.get(
    "/bookings",
    response_model=Page[BookingOut],
    summary="List bookings, soonest first (default: upcoming)",
    tags=["bookings"],
)
async def list_bookings(
    user: Reader,
    tenant: Queries,
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
        tenant.bookings,
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
    user: Reader,
    tenant: Queries,
    handled: Annotated[bool | None, Query(description="only handled, or only unhandled")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await asyncio.to_thread(
        tenant.messages, user.business_id, handled=handled, limit=limit, offset=offset
    )


@router.post(
    "/messages/{message_id}/handled",
    response_model=MessageOut,
    summary="Mark a message handled (idempotent)",
    tags=["messages"],
    responses=missing("message"),
)
async def mark_message_handled(
    user: Dispatcher, tenant: Queries, audit: Audit, message_id: RowId
) -> Any:

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
    user: Reader, tenant: Queries, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    return await asyncio.to_thread(tenant.handoffs, user.business_id, limit=limit, offset=offset)
