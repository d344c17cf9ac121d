"""The caller's questions a business profile answers by itself: opening hours, service
area, services. The local policy answers them without a tool or a model."""

from __future__ import annotations

from datetime import datetime

from routing import calendar, intents
from routing.capabilities import has_hours
from storage.profiles import BusinessProfile


def answer_question(profile: BusinessProfile, now: datetime, text: str) -> str | None:
    """The answer to a question about hours, area or services in `text`; None if it asks
    none of them."""
    p = profile
    if intents.has_any(text, intents.HOURS) and not intents.has_any(text, intents.BOOKING):
        if not has_hours(p):
            return f"I don't have our opening hours. {_call_back(p)}"
        hours = p.hours_for(now.weekday())
        if hours is None:
            return "We're closed today."
        return f"Today we're open from {calendar.clock(hours[0])} to {calendar.clock(hours[1])}."
    if intents.has_any(text, intents.AREA):
        asked = [a for a in p.service_area if a.lower() in text.lower()]
        places = ", ".join(a for a in p.service_area if not a.isdigit())
        if asked:
            return f"Yes, we serve {asked[0]}."
        if not p.service_area:
            return f"I don't have our service area. {_call_back(p)}"
        if not places:
            return "We serve these ZIP codes: " + ", ".join(p.service_area) + "."
        return f"We serve {places}, and nearby ZIP codes."
    if intents.has_any(text, intents.SERVICES):
        names = [s.name for s in p.services]
        if not names:
            return f"I don't have our list of services. {_call_back(p)}"
        if len(names) == 1:
            return f"We do {names[0]}."
        return f"We do {', '.join(names[:-1])} and {names[-1]}."
    return None


def _call_back(profile: BusinessProfile) -> str:
    return f"I can have someone from {profile.name} call you back."
