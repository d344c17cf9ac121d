"""Claims on handoffs ("I'll call this one back"), for the dispatcher console.

Until `handoffs` has columns for it, a claim is kept as an audit entry
(`action="claim_handoff"`, `target="handoff:<id>"`, the claimer as `user_id`, the call SID
in `detail`): recorded, attributed and timed without a schema change. One conditional
INSERT writes it only if the handoff has no claim yet (atomic on SQLite; on PostgreSQL
behind an advisory lock per handoff), so a handoff has at most one claim. Every query is
scoped to one business. Synchronous: async callers use asyncio.to_thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import AuditEntry, Business, Call, Handoff, User

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
