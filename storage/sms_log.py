"""Every outbound SMS attempt, sent or not: what was sent to whom, and why it was not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from storage.db import session_factory
from storage.fields import caller_id
from storage.models import SmsMessage

STATUSES = ("sent", "refused", "failed")


class SmsLog:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def log(
        self,
        business_id: int,
        to_number: str,
        purpose: str,
        body: str,
        status: str,
        twilio_sid: str | None = None,
        error: str | None = None,
        call_sid: str | None = None,
    ) -> int:
        if status not in STATUSES:
            raise ValueError(f"unknown SMS status {status!r}")
        with self._sessions.begin() as s:
            row = SmsMessage(
                business_id=business_id,
                call_sid=call_sid,
                to_number=caller_id(to_number),
                purpose=purpose,
                body=body,
                status=status,
                twilio_sid=twilio_sid,
                error=error,
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            return row.id

    def recent(self, business_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        with self._sessions() as s:
            rows = s.scalars(
                select(SmsMessage)
                .where(SmsMessage.business_id == business_id)
                .order_by(SmsMessage.id.desc())
                .limit(limit)
            )
            return [
                {
                    "id": r.id,
                    "call_sid": r.call_sid,
                    "to": r.to_number,
                    "purpose": r.purpose,
                    "body": r.body,
                    "status": r.status,
                    "twilio_sid": r.twilio_sid,
                    "error": r.error,
                }
                for r in rows
            ]
