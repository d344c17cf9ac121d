"""The dispatcher console's own endpoints under /api: who the console is signed in as, the
handoff board, and claiming a handoff ("I'll call this one back").

Until `handoffs` has columns for it, a claim is kept as an audit entry
(`action="claim_handoff"`, `target="handoff:<id>"`, the claimer as `user_id`, the call SID
in `detail`): recorded, attributed and timed without a schema change. One conditional
INSERT writes it only if the handoff has no claim yet (atomic on SQLite; on PostgreSQL
behind an advisory lock per handoff), so a handoff has at most one claim. Claiming again is
harmless for the claimer (200, the same claim) and a 409 naming the claimer for anyone
else; a new claim is published on the live feed as `handoff.claimed`. Every query is
scoped to the user's business: another business's handoff is a 404, like a missing one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import AuditEntry, Business, Call, Handoff, User
from voice_agent.api.auth import Dispatcher, Reader
from voice_agent.api.common import RowId, missing
from voice_agent.api.events import live_bus
from voice_agent.api.models import Problem


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(
    prefix="/api",
    tags=["console"],
    dependencies=[Depends(_no_store)],
    responses={401: {"model": Problem, "description": "Missing, unknown or disabled token"}},
)

CLAIM = "claim_handoff"
CLAIM_LOCK_CLASS = 0x636C6169  # "clai": pg_advisory_xact_lock(class, handoff id)


@dataclass(frozen=True)
class Claim:
    handoff_id: int
    call_sid: str | None
    user_id: int | None
    name: str | None
    at: str | None

    def json(self) -> dict[str, Any]:
        return {
            "handoff_id": self.handoff_id,
            "call_sid": self.call_sid,
            "claimed_by": {"user_id": self.user_id, "name": self.name},
            "claimed_at": self.at,
        }


class ClaimStore:
    """Synchronous, like the other stores: call through asyncio.to_thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def claim(self, business_id: int, handoff_id: int, user_id: int) -> tuple[Claim, bool] | None:
        """(the claim, whether this call made it); None: no such handoff in the business.
        One statement inserts the entry only if the handoff has none: atomic on SQLite (the
        write lock covers the statement), and on PostgreSQL behind a lock per handoff."""
        target = f"handoff:{handoff_id}"
        with self._sessions.begin() as s:
            if self._engine.dialect.name == "postgresql":
                s.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_CLASS, handoff_id)))
            found = s.execute(
                select(Handoff.id, Call.call_sid)
                .outerjoin(Call, Handoff.call_id == Call.id)
                .where(Handoff.id == handoff_id, Handoff.business_id == business_id)
            ).first()
            if found is None:
                return None
            claimed = exists().where(
                AuditEntry.business_id == business_id,
                AuditEntry.action == CLAIM,
                AuditEntry.target == target,
            )
            values = {
                "business_id": literal(business_id),
                "user_id": literal(user_id),
                "actor": literal(f"user:{user_id}"),
                "action": literal(CLAIM),
                "target": literal(target),
                "detail": literal({"call_sid": found.call_sid}, AuditEntry.detail.type),
                "at": literal(datetime.now(UTC), AuditEntry.at.type),
            }
            columns, chosen = list(values), select(*values.values()).where(~claimed)
            inserted = insert(AuditEntry).from_select(columns, chosen).returning(AuditEntry.id)
            made = s.execute(inserted).first() is not None
        with self._sessions() as s:
            winner = self._claims(s, business_id, [handoff_id])[handoff_id]
        return winner, made

    def board(self, business_id: int, limit: int) -> list[dict[str, Any]]:
        """The newest handoffs with their caller, the call's status and their claim."""
        with self._sessions() as s:
            rows = s.execute(
                select(Handoff, Call.call_sid, Call.from_number, Call.status)
                .outerjoin(Call, Handoff.call_id == Call.id)
                .where(Handoff.business_id == business_id)
                .order_by(Handoff.requested_at.desc(), Handoff.id.desc())
                .limit(limit)
            ).all()
            claims = self._claims(s, business_id, [h.id for h, *_ in rows])
            return [
                {
                    "id": h.id,
                    "call_sid": sid,
                    "caller": caller,
                    "call_status": status,
                    "reason": h.reason,
                    "summary": h.summary,
                    "dispatcher": h.dispatcher_name,
                    "requested_at": _iso(h.requested_at),
                    "dial_status": h.dial_status,
                    "claim": claims[h.id].json() if h.id in claims else None,
                }
                for h, sid, caller, status in rows
            ]

    @staticmethod
    def _claims(s: Session, business_id: int, handoff_ids: list[int]) -> dict[int, Claim]:
        if not handoff_ids:
            return {}
        entries = s.execute(
            select(AuditEntry, User.name)
            .outerjoin(User, AuditEntry.user_id == User.id)
            .where(
                AuditEntry.business_id == business_id,
                AuditEntry.action == CLAIM,
                AuditEntry.target.in_([f"handoff:{i}" for i in handoff_ids]),
            )
            .order_by(AuditEntry.id)
        )
        first: dict[int, Claim] = {}
        for entry, name in entries:
            handoff_id = int((entry.target or "").removeprefix("handoff:"))
            if handoff_id not in first:
                sid = (entry.detail or {}).get("call_sid")
                first[handoff_id] = Claim(handoff_id, sid, entry.user_id, name, _iso(entry.at))
        return first

    def business(self, business_id: int) -> dict[str, Any]:
        with self._sessions() as s:
            b = s.get(Business, business_id)
            assert b is not None, "a user's business exists"
            return {"id": b.id, "name": b.name, "timezone": b.timezone, "line": b.line}


def claims(request: Request) -> ClaimStore:
    state = request.app.state
    store = getattr(state, "console_claims", None)
    if store is None:
        store = state.console_claims = ClaimStore(state.services.db)
    return store


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
async def context(request: Request, user: Reader) -> dict[str, Any]:
    business = await asyncio.to_thread(claims(request).business, user.business_id)
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
    request: Request, user: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> Any:
    return await asyncio.to_thread(claims(request).board, user.business_id, limit)


@router.post(
    "/handoffs/{handoff_id}/claim",
    response_model=ClaimOut,
    summary="Claim a handoff: you are calling this caller (idempotent for you)",
    responses={
        409: {"model": ClaimConflict, "description": "Someone else claimed it first"},
        **missing("handoff"),
    },
)
async def claim_handoff(request: Request, user: Dispatcher, handoff_id: RowId) -> Any:
    result = await asyncio.to_thread(claims(request).claim, user.business_id, handoff_id, user.id)
    if result is None:
        raise HTTPException(404, "no such handoff")
    claim, made = result
    body = ClaimOut.model_validate(claim.json()).model_dump(mode="json")  # as the API shows it
    if made:
        bus = live_bus(request)
        if bus is not None:
            event = {"type": "handoff.claimed", "call_sid": claim.call_sid, "data": body}
            bus.publish(user.business_id, event)
    if claim.user_id != user.id:
        who = claim.name or f"user {claim.user_id}"
        conflict = {"detail": f"already claimed by {who}", "claim": body}
        return JSONResponse(conflict, status_code=409, headers={"Cache-Control": "no-store"})
    return body
