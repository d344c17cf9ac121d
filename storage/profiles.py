"""A business as the receptionist sees it: hours, services, area, rules, dispatchers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time


@dataclass(frozen=True)
class Service:
    name: str
    visit_minutes: int = 120
    keywords: tuple[str, ...] = ()  # words a caller uses for it: "drain", "furnace"


@dataclass(frozen=True)
class Dispatcher:
    id: int | None
    name: str
    phone: str
    on_call: bool = True
    sms_opt_in: bool = False


@dataclass(frozen=True)
class BusinessProfile:
    id: int
    name: str
    line: str
    timezone: str
    # weekday ("mon".."sun") -> (open, close); a missing day is closed
    opening_hours: dict[str, tuple[str, str]]
    greeting: str | None = None
    recording_enabled: bool = False
    services: tuple[Service, ...] = ()
    service_area: tuple[str, ...] = ()  # city names or ZIP codes
    emergency_rules: tuple[str, ...] = ()  # phrases that mean "hand off now"
    dispatchers: tuple[Dispatcher, ...] = field(default=())
    slot_minutes: int = 120
    visits_per_slot: int = 2

    def hours_for(self, weekday: int) -> tuple[time, time] | None:
        day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]
        span = self.opening_hours.get(day)
        if not span:
            return None
        return time.fromisoformat(span[0]), time.fromisoformat(span[1])

    @property
    def on_call(self) -> Dispatcher | None:
        return next((d for d in self.dispatchers if d.on_call), None)


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEMO_PROFILE = {
    "name": "Bluebird Plumbing & HVAC",
    "line": "+15550100200",
    "timezone": "America/New_York",
    "opening_hours": {d: ["07:00", "19:00"] for d in DAYS},
    "greeting": None,
    "recording_enabled": False,
    "services": [
        {
            "name": "drain cleaning",
            "visit_minutes": 90,
            "keywords": ["drain", "clog", "clogged", "sink", "toilet", "backed up", "slow drain"],
        },
        {
            "name": "plumbing repair",
            "visit_minutes": 120,
            "keywords": ["leak", "leaking", "pipe", "faucet", "water heater", "plumbing", "shower"],
        },
        {
            "name": "heating repair",
            "visit_minutes": 120,
            "keywords": ["furnace", "heat", "heating", "boiler", "heat pump", "radiator"],
        },
        {
            "name": "air conditioning repair",
            "visit_minutes": 120,
            "keywords": ["air conditioning", "ac", "a/c", "cooling", "air conditioner"],
        },
        {
            "name": "maintenance visit",
            "visit_minutes": 60,
            "keywords": ["maintenance", "tune-up", "tune up", "inspection", "checkup"],
        },
    ],
    "service_area": [
        "Springfield",
        "Shelbyville",
        "Riverton",
        "Oakdale",
        "01101",
        "01103",
        "01104",
        "01105",
        "01107",
        "01108",
    ],
    "emergency_rules": [
        "burst pipe",
        "pipe burst",
        "flooding",
        "flooded",
        "water pouring",
        "pouring through",
        "water everywhere",
        "gas smell",
        "smell gas",
        "smells like gas",
        "gas leak",
        "no heat",
        "sparking",
        "sparks",
        "electrical fire",
        "smoke",
        "sewage backing up",
    ],
    "dispatchers": [
        {"name": "Dana Whitfield", "phone": "+15550100299", "on_call": True, "sms_opt_in": True},
    ],
    "slot_minutes": 120,
    "visits_per_slot": 2,
}
