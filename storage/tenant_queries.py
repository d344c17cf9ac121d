"""The dashboard API's reads and writes, every one scoped to one business.

Each method takes the business id first and puts it in the WHERE clause: a row of another
business is indistinguishable from a row that does not exist. Synchronous: the API calls
these through asyncio.to_thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.calls import CallStore, call_summary
from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import Booking, Business, Call, Handoff, Message
from storage.outcomes import booking_json, message_json

When = date | datetime  # a bare date, or a date and time; naive ones are business-local


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC; either side open."""

    start: datetime | None = None
    end: datetime | None = None


def parse_when(value: str) -> When:
    """ISO 8601: `2030-05-07`, `2030-05-07T09:00`, `2030-05-07T09:00:00-05:00`, `…Z`."""
    value = value.strip()
    if "T" not in value.upper() and " " not in value:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value)


def window(tz: ZoneInfo, start: When | None, end: When | None) -> Window:
    """A bare date covers the whole day, in the business's time zone; an `end` datetime is
    included."""

    def local(d: date) -> datetime:
        return datetime.combine(d, time(), tzinfo=tz)

    def moment(dt: datetime) -> datetime:
        return dt if dt.tzinfo else dt.replace(tzinfo=tz)

    lo = hi = None
    if isinstance(start, datetime):
        lo = moment(start)
    elif start is not None:
        lo = local(start)
    if isinstance(end, datetime):
        hi = moment(end) + timedelta(microseconds=1)
    elif end is not None:
        hi = local(end + timedelta(days=1))
    # SQLite keeps no offset: every stored time is UTC, so every bound must be too.
    return Window(lo and lo.astimezone(UTC), hi and hi.astimezone(UTC))


def _page(total: int, items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


class TenantQueries:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self._calls = CallStore(engine)

    @staticmethod
    def _tz(s: Session, business_id: int) -> ZoneInfo:
        return ZoneInfo(s.scalar(select(Business.timezone).where(Business.id == business_id)))

    def owns_call(self, business_id: int, call_sid: str) -> bool:
        with self._sessions() as s:
            found = s.scalar(
                select(Call.id).where(Call.call_sid == call_sid, Call.business_id == business_id)
            )
            return found is not None

    def calls(
        self,
        business_id: int,
        *,
        since: When | None = None,
        until: When | None = None,
        outcome: str | None = None,
        caller: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        with self._sessions() as s:
            span = window(self._tz(s, business_id), since, until)
            where = [Call.business_id == business_id]
            if span.start is not None:
                where.append(Call.started_at >= span.start)
            if span.end is not None:
                where.append(Call.started_at < span.end)
            if outcome is not None:
                where.append(Call.outcome == outcome)
            if caller is not None:
                where.append(Call.from_number == caller)
            total = s.scalar(select(func.count(Call.id)).where(*where))
            rows = s.scalars(
                select(Call)
                .where(*where)
                .order_by(Call.started_at.desc(), Call.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return _page(total, [call_summary(c) for c in rows], limit, offset)

    def call(self, business_id: int, call_sid: str) -> dict[str, Any] | None:
        """The call with its transcript, turns and outcome, as `calls show --json` has it."""
        if not self.owns_call(business_id, call_sid):
            return None
        return self._calls.call_json(call_sid)

    def bookings(
        self,
        business_id: int,
        *,
        start: When | None = None,
        end: When | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Soonest first. Without `start` or `end`: from now on (the upcoming ones)."""
        with self._sessions() as s:
            tz = self._tz(s, business_id)
            span = window(tz, start, end)
            if start is None and end is None:
                span = Window(datetime.now(UTC), None)
            where = [Booking.business_id == business_id]
            if span.start is not None:
                where.append(Booking.scheduled_for >= span.start)
            if span.end is not None:
                where.append(Booking.scheduled_for < span.end)
            total = s.scalar(select(func.count(Booking.id)).where(*where))
            rows = s.execute(
                select(Booking, Call.call_sid)
                .outerjoin(Call, Booking.call_id == Call.id)
                .where(*where)
                .order_by(Booking.scheduled_for, Booking.id)
                .limit(limit)
                .offset(offset)
            )
            items = [
                {
                    "id": b.id,
                    "call_sid": sid,
                    **booking_json(b, tz),
                    "created_at": _iso(b.created_at),
                }
                for b, sid in rows
            ]
            return _page(total, items, limit, offset)

    def messages(
        self, business_id: int, *, handled: bool | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """Newest first."""
        where = [Message.business_id == business_id]
        if handled is True:
            where.append(Message.handled_at.is_not(None))
        elif handled is False:
            where.append(Message.handled_at.is_(None))
        with self._sessions() as s:
            total = s.scalar(select(func.count(Message.id)).where(*where))
            rows = s.execute(
                select(Message, Call.call_sid)
                .outerjoin(Call, Message.call_id == Call.id)
                .where(*where)
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return _page(total, [_message(m, sid) for m, sid in rows], limit, offset)

    def mark_handled(self, business_id: int, message_id: int) -> dict[str, Any] | None:
        """Idempotent: the first time it was handled is kept."""
        with self._sessions.begin() as s:
            row = s.execute(
                select(Message, Call.call_sid)
                .outerjoin(Call, Message.call_id == Call.id)
                .where(Message.id == message_id, Message.business_id == business_id)
            ).first()
            if row is None:
                return None
            message, sid = row
            if message.handled_at is None:
                message.handled_at = datetime.now(UTC)
            return _message(message, sid)

    def handoffs(self, business_id: int, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Newest first."""
        where = [Handoff.business_id == business_id]
        with self._sessions() as s:
            total = s.scalar(select(func.count(Handoff.id)).where(*where))
            rows = s.execute(
                select(Handoff, Call.call_sid)
                .outerjoin(Call, Handoff.call_id == Call.id)
                .where(*where)
                .order_by(Handoff.requested_at.desc(), Handoff.id.desc())
                .limit(limit)
                .offset(offset)
            )
            items = [
                {
                    "id": h.id,
                    "call_sid": sid,
                    "reason": h.reason,
                    "summary": h.summary,
                    "dispatcher": h.dispatcher_name,
                    "dispatcher_phone": h.dispatcher_phone,
                    "requested_at": _iso(h.requested_at),
                    "dialed_at": _iso(h.dialed_at),
                    "dial_status": h.dial_status,
                    "ended_at": _iso(h.ended_at),
                }
                for h, sid in rows
            ]
            return _page(total, items, limit, offset)


def _message(m: Message, call_sid: str | None) -> dict[str, Any]:
    return {
        "id": m.id,
        "call_sid": call_sid,
        **message_json(m),
        "handled": m.handled_at is not None,
        "handled_at": _iso(m.handled_at),
    }
