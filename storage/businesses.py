"""Businesses and their receptionist profiles: lookup, creation, YAML import/export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from storage.db import session_factory
from storage.models import Business, ConsentRecord, Dispatcher
from storage.profiles import DEMO_PROFILE, BusinessProfile, Service
from storage.profiles import Dispatcher as DispatcherInfo

PROFILE_FIELDS = (
    "name",
    "line",
    "timezone",
    "opening_hours",
    "greeting",
    "recording_enabled",
    "services",
    "service_area",
    "emergency_rules",
    "slot_minutes",
    "visits_per_slot",
    "recording_retention_days",
    "transcript_retention_days",
    "sms_help_text",
)
DISPATCHER_CONSENT = "Agreed to receive SMS alerts about handed-off calls (profile import)."


def to_profile(b: Business) -> BusinessProfile:
    return BusinessProfile(
        id=b.id,
        name=b.name,
        line=b.line,
        timezone=b.timezone,
        opening_hours={d: (s[0], s[1]) for d, s in (b.opening_hours or {}).items() if s},
        greeting=b.greeting,
        recording_enabled=b.recording_enabled,
        services=tuple(
            Service(s["name"], int(s.get("visit_minutes", 120)), tuple(s.get("keywords", ())))
            for s in b.services or []
        ),
        service_area=tuple(b.service_area or ()),
        emergency_rules=tuple(b.emergency_rules or ()),
        dispatchers=tuple(
            DispatcherInfo(d.id, d.name, d.phone, d.on_call, d.sms_opt_in) for d in b.dispatchers
        ),
        slot_minutes=b.slot_minutes,
        visits_per_slot=b.visits_per_slot,
    )


def profile_dict(b: Business) -> dict[str, Any]:
    data = {f: getattr(b, f) for f in PROFILE_FIELDS}
    data["dispatchers"] = [
        {"name": d.name, "phone": d.phone, "on_call": d.on_call, "sms_opt_in": d.sms_opt_in}
        for d in b.dispatchers
    ]
    return data


def apply_profile(session: Session, b: Business, data: dict[str, Any]) -> None:
    """Set a business's profile from a dict (as read from YAML). Dispatchers are replaced;
    an SMS opt-in is recorded as a consent record, since alerts depend on it."""
    unknown = set(data) - set(PROFILE_FIELDS) - {"dispatchers", "id"}
    if unknown:
        raise ValueError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    for f in PROFILE_FIELDS:
        if f in data:
            setattr(b, f, data[f])
    if "dispatchers" not in data:
        return
    b.dispatchers = [
        Dispatcher(
            name=d["name"],
            phone=d["phone"],
            on_call=bool(d.get("on_call", False)),
            sms_opt_in=bool(d.get("sms_opt_in", False)),
        )
        for d in data["dispatchers"]
    ]
    session.flush()
    for d in b.dispatchers:
        if d.sms_opt_in:
            session.add(
                ConsentRecord(
                    business_id=b.id,
                    phone=d.phone,
                    channel="sms",
                    opt_in=True,
                    source="admin",
                    wording=DISPATCHER_CONSENT,
                    recorded_at=datetime.now(UTC),
                )
            )


def seed_demo(session: Session) -> None:
    """A fresh database answers calls for the demo business with no set-up at all."""
    if session.scalar(select(Business.id).limit(1)) is not None:
        return
    demo = Business(name=DEMO_PROFILE["name"], line=DEMO_PROFILE["line"], timezone="UTC")
    session.add(demo)
    session.flush()
    apply_profile(session, demo, DEMO_PROFILE)


class BusinessStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def _query(self):  # type: ignore[no-untyped-def]
        return select(Business).options(selectinload(Business.dispatchers))

    def by_line(self, line: str) -> BusinessProfile | None:
        with self._sessions() as s:
            b = s.scalar(self._query().where(Business.line == line))
            return to_profile(b) if b else None

    def by_id(self, business_id: int) -> BusinessProfile | None:
        with self._sessions() as s:
            b = s.scalar(self._query().where(Business.id == business_id))
            return to_profile(b) if b else None

    def list(self) -> list[dict[str, Any]]:
        with self._sessions() as s:
            return [
                {"id": b.id, "name": b.name, "line": b.line, "timezone": b.timezone}
                for b in s.scalars(select(Business).order_by(Business.id))
            ]

    def add(self, name: str, line: str, timezone: str) -> int:
        with self._sessions.begin() as s:
            b = Business(name=name, line=line, timezone=timezone, opening_hours={})
            s.add(b)
            s.flush()
            return b.id

    def export_yaml(self, business_id: int) -> str:
        with self._sessions() as s:
            b = s.scalar(self._query().where(Business.id == business_id))
            if b is None:
                raise LookupError(f"no business {business_id}")
            return yaml.safe_dump(profile_dict(b), sort_keys=False, allow_unicode=True)

    def import_yaml(self, business_id: int, text: str) -> None:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError("a profile is a YAML mapping of fields")
        with self._sessions.begin() as s:
            b = s.scalar(self._query().where(Business.id == business_id))
            if b is None:
                raise LookupError(f"no business {business_id}")
            apply_profile(s, b, data)
