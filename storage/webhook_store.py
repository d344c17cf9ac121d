"""CRM webhook endpoints, the log of every delivery attempt, and the deliveries a worker
shutting down parked for the others."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, select

from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import Business, WebhookDelivery, WebhookEndpoint, WebhookParked

EVENTS = ("booking.created", "call.handed_off", "message.created", "call.completed")


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    secret: str
    events: tuple[str, ...]  # empty: every event


@dataclass(frozen=True)
class Parked:
    endpoint_id: int
    business_id: int
    event_id: str
    event: str
    body: bytes
    attempts_done: int


class WebhookStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def add_endpoint(
        self, business_id: int, url: str, events: list[str] | tuple[str, ...] = ()
    ) -> tuple[int, str]:
        """Returns (id, secret). The secret is the HMAC key the receiver verifies with."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        unknown = set(events) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown events: {', '.join(sorted(unknown))}")
        secret = "whsec_" + secrets.token_hex(32)
        with self._sessions.begin() as s:
            if s.get(Business, business_id) is None:
                raise LookupError(f"no business {business_id}")
            ep = WebhookEndpoint(
                business_id=business_id,
                url=url,
                secret=secret,
                events=sorted(set(events)),
                active=True,
            )
            s.add(ep)
            s.flush()
            return ep.id, secret

    def endpoints_for(self, business_id: int, event: str) -> list[Endpoint]:
        """Active endpoints of this business subscribed to the event."""
        with self._sessions() as s:
            rows = s.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.business_id == business_id, WebhookEndpoint.active)
                .order_by(WebhookEndpoint.id)
            )
            # Filtered here, not in SQL: JSON containment differs between SQLite and PostgreSQL.
            return [
                Endpoint(r.id, r.url, r.secret, tuple(r.events or ()))
                for r in rows
                if not r.events or event in r.events
            ]

    def set_active(self, endpoint_id: int, active: bool) -> None:
        with self._sessions.begin() as s:
            ep = s.get(WebhookEndpoint, endpoint_id)
            if ep is None:
                raise LookupError(f"no webhook endpoint {endpoint_id}")
            ep.active = active

    def list_endpoints(self, business_id: int) -> list[dict[str, Any]]:
        """Without secrets: they are shown once, when the endpoint is added."""
        with self._sessions() as s:
            rows = s.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.business_id == business_id)
                .order_by(WebhookEndpoint.id)
            )
            return [
                {"id": r.id, "url": r.url, "events": list(r.events or []), "active": r.active}
                for r in rows
            ]

    def log_attempt(
        self,
        endpoint_id: int,
        event_id: str,
        event: str,
        attempt: int,
        status_code: int | None,
        error: str | None,
        delivered: bool,
    ) -> None:
        with self._sessions.begin() as s:
            s.add(
                WebhookDelivery(
                    endpoint_id=endpoint_id,
                    event_id=event_id,
                    event=event,
                    attempt=attempt,
                    status_code=status_code,
                    error=error,
                    delivered=delivered,
                    attempted_at=datetime.now(UTC),
                )
            )

    def attempts(self, event_id: str) -> list[dict[str, Any]]:
        with self._sessions() as s:
            rows = s.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.event_id == event_id)
                .order_by(WebhookDelivery.endpoint_id, WebhookDelivery.attempt)
            )
            return [
                {
                    "endpoint_id": r.endpoint_id,
                    "event": r.event,
                    "attempt": r.attempt,
                    "status_code": r.status_code,
                    "error": r.error,
                    "delivered": r.delivered,
                    "attempted_at": _iso(r.attempted_at),
                }
                for r in rows
            ]

    def endpoint(self, endpoint_id: int) -> Endpoint | None:
        """An active endpoint by id (a parked delivery's; None once it was removed or
        turned off)."""
        with self._sessions() as s:
            row = s.get(WebhookEndpoint, endpoint_id)
            if row is None or not row.active:
                return None
            return Endpoint(row.id, row.url, row.secret, tuple(row.events or ()))

    def park(self, deliveries: list[Parked]) -> None:
        if not deliveries:
            return
        now = datetime.now(UTC)
        with self._sessions.begin() as s:
            s.add_all(
                WebhookParked(
                    endpoint_id=d.endpoint_id,
                    business_id=d.business_id,
                    event_id=d.event_id,
                    event=d.event,
                    body=d.body.decode(),
                    attempts_done=d.attempts_done,
                    parked_at=now,
                )
                for d in deliveries
            )

    def take_parked(self, limit: int = 100) -> list[Parked]:
        """Parked deliveries, each handed to exactly one caller: one DELETE ... RETURNING
        claims them (SQLite's write lock covers the statement; PostgreSQL skips rows
        another worker is taking)."""
        chosen = (
            select(WebhookParked.id)
            .order_by(WebhookParked.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        taken = delete(WebhookParked).where(WebhookParked.id.in_(chosen))
        with self._sessions.begin() as s:
            rows = s.execute(
                taken.returning(
                    WebhookParked.endpoint_id,
                    WebhookParked.business_id,
                    WebhookParked.event_id,
                    WebhookParked.event,
                    WebhookParked.body,
                    WebhookParked.attempts_done,
                )
            ).all()
        return [Parked(r[0], r[1], r[2], r[3], r[4].encode(), r[5]) for r in rows]
