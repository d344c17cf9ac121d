"""Businesses and their receptionist profiles: lookup, creation, YAML import/export."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from storage.business_rows import apply_profile
from storage.db import session_factory
from storage.models import Business, PhoneNumber
from storage.profiles import (
    BusinessProfile,
    ProfileFile,
    Service,
    dump_profile_yaml,
    load_profile_yaml,
)
from storage.profiles import Dispatcher as DispatcherInfo

# The business columns a profile file sets, in the order export prints them
PROFILE_FIELDS = tuple(f for f in ProfileFile.model_fields if f not in ("id", "dispatchers"))


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
        sms_help_text=b.sms_help_text,
        vocabulary=tuple(b.vocabulary or ()),
    )


def profile_dict(b: Business) -> dict[str, Any]:
    data = {f: getattr(b, f) for f in PROFILE_FIELDS}
    data["dispatchers"] = [
        {"name": d.name, "phone": d.phone, "on_call": d.on_call, "sms_opt_in": d.sms_opt_in}
        for d in b.dispatchers
    ]
    return data


class BusinessStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def _query(self):  # type: ignore[no-untyped-def]
        return select(Business).options(selectinload(Business.dispatchers))

    def by_line(self, number: str) -> BusinessProfile | None:
        """The business that answers calls and texts to `number`: the one whose main line
        it is, else the one it is another number of (storage.models.PhoneNumber)."""
        with self._sessions() as s:
            b = s.scalar(self._query().where(Business.line == number)) or s.scalar(
                self._query()
                .join(PhoneNumber, PhoneNumber.business_id == Business.id)
                .where(PhoneNumber.number == number)
            )
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
