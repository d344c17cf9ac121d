"""What a business profile lets the receptionist offer: the tools, the prompt and the
local policy all ask the same questions of it."""

from __future__ import annotations

from storage.profiles import BusinessProfile


def has_hours(profile: BusinessProfile) -> bool:
    """The business lists opening hours for at least one day of the week."""
    return any(profile.hours_for(day) for day in range(7))


def can_book(profile: BusinessProfile) -> bool:
    """Visits can be booked: the business lists services and opening hours."""
    return bool(profile.services) and has_hours(profile)


def can_transfer(profile: BusinessProfile) -> bool:
    """Someone is on call to take a transferred call."""
    dispatcher = profile.on_call
    return dispatcher is not None and bool(dispatcher.phone)
