"""The audit log: who read or changed what, per business.

Targets name things by a stable, non-personal handle: a call SID (`CA…`), `user:3`,
`message:12`. Avoid phone numbers and names in targets and details; when an entry must
point at a caller rather than a call, use storage.phone_refs.phone_ref, a keyed reference
that lets entries about the same number be matched without holding it.
Synchronous: async callers use asyncio.to_thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import AuditEntry


def write_audit(
    s: Session,
    business_id: int | None,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    user_id: int | None = None,
) -> AuditEntry:
    """An entry in the caller's transaction, so it exists exactly when the change it
    describes was committed. `actor`: "user:3", "cli" or "system"; `action`:
    read_transcript, create_user, delete_caller, …"""
    entry = AuditEntry(
        business_id=business_id,
        user_id=user_id,
        actor=actor,
        action=action,
        target=target,
        detail=detail or {},
        at=datetime.now(UTC),
    )
    s.add(entry)
    return entry


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def record(
        self,
        business_id: int | None,
        actor: str,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        user_id: int | None = None,
    ) -> int:
        """An entry in a transaction of its own (see write_audit); returns its id."""
        with self._sessions.begin() as s:
            entry = write_audit(s, business_id, actor, action, target, detail, user_id)
            s.flush()
            return entry.id

    def entries(self, business_id: int, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first, of one business only."""
        with self._sessions() as s:
            rows = s.scalars(
                select(AuditEntry)
                .where(AuditEntry.business_id == business_id)
                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [
                {
                    "id": e.id,
                    "at": _iso(e.at),
                    "actor": e.actor,
                    "user_id": e.user_id,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail or {},
                }
                for e in rows
            ]
