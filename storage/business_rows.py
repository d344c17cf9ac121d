"""A business's rows set from a profile, inside the caller's session: `apply_profile` (with
the dispatchers and their SMS consent) and `seed_demo`, the demo business a fresh database
starts with. No engine here, so storage.db can seed a new database without importing the
stores that are built on it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Business, ConsentRecord, Dispatcher, Handoff
from storage.profiles import DEMO_PROFILE, DispatcherSpec, ProfileFile, validate_profile

DISPATCHER_CONSENT = "Agreed to receive SMS alerts about handed-off calls (profile import)."
DISPATCHER_OPT_OUT = "SMS alerts about handed-off calls turned off (profile import)."


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
