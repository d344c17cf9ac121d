"""The business calendar: opening hours, slots, capacity, and the nearest free slots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from storage.profiles import BusinessProfile

# (slot start, slot end) in UTC -> visits already booked in it
CountBooked = Callable[[datetime, datetime], int]


def tz(profile: BusinessProfile) -> ZoneInfo:
    return ZoneInfo(profile.timezone)


def slots_on(profile: BusinessProfile, day: datetime) -> list[datetime]:
    """Slot starts on the local day of `day`, aligned to opening time."""
    hours = profile.hours_for(day.weekday())
    if hours is None:
        return []
    zone = tz(profile)
    start = datetime.combine(day.date(), hours[0], tzinfo=zone)
    end = datetime.combine(day.date(), hours[1], tzinfo=zone)
    step = timedelta(minutes=profile.slot_minutes)
    out = []
    while start + step <= end:
        out.append(start)
        start += step
    return out


def slot_for(profile: BusinessProfile, when: datetime) -> datetime | None:
    """The slot a requested time falls in (None when closed then)."""
    for start in slots_on(profile, when):
        if start <= when < start + timedelta(minutes=profile.slot_minutes):
            return start
    return None


def refusal(profile: BusinessProfile, when: datetime, now: datetime) -> str | None:
    """Why a visit cannot be booked at `when`, in words a caller (or a model) can act on."""
    if when <= now:
        return "That time has already passed."
    hours = profile.hours_for(when.weekday())
    if hours is None:
        return f"We don't book visits on {when.strftime('%A')}s."
    if slot_for(profile, when) is None:
        return (
            f"We book visits between {clock(hours[0])} and {clock(hours[1])} "
            f"on {when.strftime('%A')}s."
        )
    if when > now + timedelta(days=60):
        return "We only book up to 60 days ahead."
    return None


def free_slots(
    profile: BusinessProfile, near: datetime, now: datetime, booked: CountBooked, count: int = 3
) -> list[datetime]:
    """The free slots closest to `near` (before or after it), earliest first."""
    candidates = []
    for offset in range(-1, 15):
        day = near + timedelta(days=offset)
        for start in slots_on(profile, day):
            if start > now:
                candidates.append(start)
    candidates.sort(key=lambda s: (abs((s - near).total_seconds()), s))
    chosen = []
    for start in candidates:
        end = start + timedelta(minutes=profile.slot_minutes)
        if booked(utc(start), utc(end)) < profile.visits_per_slot:
            chosen.append(start)
            if len(chosen) == count:
                break
    return sorted(chosen)


def speak_time(when: datetime, now: datetime) -> str:
    """'tomorrow at 9 AM', 'Thursday, December 3 at 2 PM'."""
    at = clock(when.timetz())
    days = (when.date() - now.date()).days
    if days == 0:
        return f"today at {at}"
    if days == 1:
        return f"tomorrow at {at}"
    return f"{when.strftime('%A')}, {when.strftime('%B')} {when.day} at {at}"


def clock(t) -> str:  # type: ignore[no-untyped-def]
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def utc(dt: datetime) -> datetime:
    return dt.astimezone(ZoneInfo("UTC"))
