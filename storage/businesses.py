"""Businesses and their receptionist profiles: lookup, creation, YAML import/export."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from storage.db import session_factory
from storage.models import Business, ConsentRecord, Dispatcher, Handoff
from storage.profiles import (
    DEMO_PROFILE,
    BusinessProfile,
    DispatcherSpec,
    ProfileFile,
    Service,
    dump_profile_yaml,
    load_profile_yaml,
    validate_profile,
)
from storage.profiles import Dispatcher as DispatcherInfo

# The business columns a profile file sets, in the order export prints them
PROFILE_FIELDS = tuple(f for f in ProfileFile.model_fields if f not in ("id", "dispatchers"))
DISPATCHER_CONSENT = "Agreed to receive SMS alerts about handed-off calls (profile import)."
DISPATCHER_OPT_OUT = "SMS alerts about handed-off calls turned off (profile import)."


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


def apply_profile(session: Session, b: Business, data: dict[str, Any] | ProfileFile) -> list[str]:
    """Set a business's profile from a dict (as read from YAML), checked first: nothing is
    changed when a field is wrong. What the data leaves out stays as it is. Returns notes
    for the operator (dispatchers kept because handoffs refer to them)."""
    profile = data if isinstance(data, ProfileFile) else validate_profile(data)
    values = profile.model_dump(mode="json", exclude_unset=True, exclude={"id", "dispatchers"})
    for f, value in values.items():
        setattr(b, f, value)
    if "dispatchers" not in profile.model_fields_set:
        return []
    return _set_dispatchers(session, b, profile.dispatchers or [])


def _set_dispatchers(session: Session, b: Business, wanted: list[DispatcherSpec]) -> list[str]:
    """Update dispatchers in place, matched by phone, then by name: their ids stay, and so
    do the handoffs that refer to them. One the file leaves out is deleted, unless a handoff
    refers to it: then it is kept off call and without SMS alerts. An SMS opt-in is recorded
    as a consent record (alerts depend on it) when it is new, and an opt-out when it ends."""
    left_out = list(b.dispatchers)  # what no entry of the file matches, in the end
    matched: dict[int, Dispatcher] = {}  # index in `wanted` -> row
    for by in ("phone", "name"):
        for i, spec in enumerate(wanted):
            row = None if i in matched else _find(left_out, by, getattr(spec, by))
            if row is not None:
                matched[i] = row
                left_out.remove(row)
    consent: list[tuple[str, bool]] = []
    for i, spec in enumerate(wanted):
        row = matched.get(i)
        if row is None:
            row = Dispatcher(name=spec.name, phone=spec.phone)
            b.dispatchers.append(row)
        was_opted_in = row.sms_opt_in and row.phone == spec.phone
        if row.sms_opt_in and not (was_opted_in and spec.sms_opt_in):
            consent.append((row.phone, False))
        if spec.sms_opt_in and not was_opted_in:
            consent.append((spec.phone, True))
        row.name, row.phone = spec.name, spec.phone
        row.on_call, row.sms_opt_in = spec.on_call, spec.sms_opt_in

    notes = []
    referenced = set(
        session.scalars(
            select(Handoff.dispatcher_id).where(Handoff.dispatcher_id.in_([d.id for d in left_out]))
        )
    )
    for d in left_out:
        if d.sms_opt_in:
            consent.append((d.phone, False))
        if d.id in referenced:
            d.on_call = d.sms_opt_in = False
            notes.append(
                f"kept dispatcher {d.name} ({d.phone}) off call and without SMS alerts: "
                "handoffs refer to them"
            )
        else:
            b.dispatchers.remove(d)
    session.flush()
    for phone, opt_in in consent:
        session.add(
            ConsentRecord(
                business_id=b.id,
                phone=phone,
                channel="sms",
                opt_in=opt_in,
                source="admin",
                wording=DISPATCHER_CONSENT if opt_in else DISPATCHER_OPT_OUT,
                recorded_at=datetime.now(UTC),
            )
        )
    return notes


def _find(rows: list[Dispatcher], by: str, value: str) -> Dispatcher | None:
    return next((d for d in rows if getattr(d, by) == value), None)


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
        with _line_is_free(line), self._sessions.begin() as s:
            b = Business(name=name, line=line, timezone=timezone, opening_hours={})
            s.add(b)
            s.flush()
            return b.id

    def export_yaml(self, business_id: int) -> str:
        with self._sessions() as s:
            b = s.scalar(self._query().where(Business.id == business_id))
            if b is None:
                raise LookupError(f"no business {business_id}")
            return dump_profile_yaml(profile_dict(b))

    def import_yaml(self, business_id: int, text: str) -> list[str]:
        """Set the profile from YAML as export_yaml prints it. Raises ProfileError (a
        ValueError naming the wrong fields), LookupError, or ValueError for a line that
        belongs to another business. Returns notes for the operator."""
        profile = load_profile_yaml(text)
        with _line_is_free(profile.line), self._sessions.begin() as s:
            b = s.scalar(self._query().where(Business.id == business_id))
            if b is None:
                raise LookupError(f"no business {business_id}")
            return apply_profile(s, b, profile)


@contextmanager
def _line_is_free(line: str | None) -> Iterator[None]:
    """A line answers for one business: the unique index refuses a second, said here."""
    try:
        yield
    except IntegrityError:
        if line is None:  # not about a line: a bug, shown as one
            raise
        raise ValueError(f"the line {line} already belongs to a business") from None
