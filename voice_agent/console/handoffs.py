"""The dispatcher console's own endpoints under /api: who the console is signed in as, the
handoff board, and claiming a handoff ("I'll call this one back").

A claim is stored by storage.claims (an audit entry; at most one per handoff). Claiming
again is harmless for the claimer (200, the same claim) and a 409 naming the claimer for
anyone else; a new claim is published on the live feed as `handoff.claimed`. Every query is
scoped to the user's business: another business's handoff is a 404, like a missing one."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from voice_agent.api.deps import Bus, Claims, Dispatcher, Reader, no_store
from voice_agent.api.models import Problem
from voice_agent.api.params import UNAUTHORIZED, RowId, missing

router = APIRouter(
    prefix="/api", tags=["console"], dependencies=[Depends(no_store)], responses=UNAUTHORIZED
)

# ---- bodies -------------------------------------------------------------------------------


class ClaimedBy(BaseModel):
    user_id: int | None
    name: str | None


class ClaimOut(BaseModel):
    handoff_id: int
    call_sid: str | None
    claimed_by: ClaimedBy
    claimed_at: datetime | None


class ClaimConflict(Problem):
    claim: ClaimOut


class BoardItem(BaseModel):
    id: int
    call_sid: str | None
    caller: str | None = Field(description="the caller's number, E.164")
    call_status: str | None
    reason: str
    summary: str | None
    dispatcher: str | None
    requested_at: datetime
    dial_status: str | None
    claim: ClaimOut | None


class ConsoleUser(BaseModel):
    id: int
    name: str | None
    role: str


class ConsoleBusiness(BaseModel):
    id: int
    name: str
    timezone: str
    line: str


class ConsoleContext(BaseModel):
    user: ConsoleUser
    business: ConsoleBusiness


# ---- routes -------------------------------------------------------------------------------


@router.get(
    "/console/context",
    response_model=ConsoleContext,
    summary="Who the console is signed in as, and for which business",
)
async def context(user: Reader, claims: Claims) -> dict[str, Any]:
    business = await asyncio.to_thread(claims.business, user.business_id)
    return {
        "user": {"id": user.id, "name": user.name, "role": user.role},
        "business": business,
    }


@router.get(
    "/console/handoffs",
    response_model=list[BoardItem],
    summary="The newest handoffs, with caller and claim",
)
async def handoff_board(
    user: Reader, claims: Claims, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Any:
    return await asyncio.to_thread(claims.board, user.business_id, limit)


@router.post(
    "/handoffs/{handoff_id}/claim",
    response_model=ClaimOut,
    summary="Claim a handoff: you are calling this caller (idempotent for you)",
    responses={
        409: {"model": ClaimConflict, "description": "Someone else claimed it first"},
        **missing("handoff"),
    },
)
async def claim_handoff(user: Dispatcher, claims: Claims, bus: Bus, handoff_id: RowId) -> Any:
    result = await asyncio.to_thread(claims.claim, user.business_id, handoff_id, user.id)
    if result is None:
        raise HTTPException(404, "no such handoff")
    claim, made = result
    body = ClaimOut.model_validate(claim.json()).model_dump(mode="json")  # as the API shows it
    if made:
        event = {"type": "handoff.claimed", "call_sid": claim.call_sid, "data": body}
        bus.publish(user.business_id, event)
    if claim.user_id != user.id:
        who = claim.name or f"user {claim.user_id}"
        conflict = {"detail": f"already claimed by {who}", "claim": body}
        return JSONResponse(conflict, status_code=409, headers={"Cache-Control": "no-store"})
    return body
