"""A business as the receptionist sees it: hours, services, area, rules, dispatchers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


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
    sms_help_text: str | None = None  # the answer to a HELP text; None: a default one
    # Words its callers say that a recognizer may not know: the streets of its area, town
    # and brand names (transcripts/vocabulary.py). Streets listed here are also what a
    # misheard street name is matched against.
    vocabulary: tuple[str, ...] = ()

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


# --- The profile file (YAML): what `business import` accepts and `business export` prints ---


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names each wrong field."""


def _hhmm(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'{value} is a number, not a time: write hours as quoted "HH:MM" strings, '
            "e.g. '09:00' (YAML reads an unquoted 9:00 as the number 540)"
        )
    if not isinstance(value, str):
        raise ValueError(f"hours are \"HH:MM\" strings, e.g. '09:00', not {value!r}")
    try:
        return datetime.strptime(value.strip(), "%H:%M").strftime("%H:%M")
    except ValueError:
        raise ValueError(f"hours are \"HH:MM\" strings, e.g. '09:00', not {value!r}") from None


def _area(value: Any) -> str:
    """A city name or a ZIP code; a ZIP code is 5 digits, as a string (01106 is not 1106)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"ZIP codes are quoted 5-digit strings, e.g. '01106', not {value}")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a service area entry is a city name or a ZIP code, not {value!r}")
    value = value.strip()
    if value.isdigit() and len(value) != 5:
        raise ValueError(f"a ZIP code has 5 digits, e.g. '01106', not {value!r}")
    return value


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone, else a ValueError saying what is expected."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {name!r} (an IANA name, e.g. America/Chicago)"
        raise ValueError(msg) from None
    return name


HHMM = Annotated[str, BeforeValidator(_hhmm)]
TimeZone = Annotated[str, AfterValidator(check_timezone)]
AreaEntry = Annotated[str, BeforeValidator(_area)]
E164 = Annotated[
    str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +15550100200")
]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ServiceSpec(_Strict):
    name: Text
    visit_minutes: int = Field(120, ge=5, le=24 * 60)
    keywords: list[Text] = []


class DispatcherSpec(_Strict):
    name: Text
    phone: E164
    on_call: bool = False
    sms_opt_in: bool = False


# Business columns that hold no NULL: a file may leave them out, not set them to null
NOT_NULL = (
    "name",
    "line",
    "timezone",
    "recording_enabled",
    "slot_minutes",
    "visits_per_slot",
    "recording_retention_days",
    "transcript_retention_days",
)


class ProfileFile(_Strict):
    """Every field is optional: what a file leaves out stays as it is."""

    id: int | None = None  # accepted and ignored: the business is the one named on import
    name: Text | None = None
    line: E164 | None = None
    timezone: TimeZone | None = None
    opening_hours: dict[Day, tuple[HHMM, HHMM] | None] | None = None
    greeting: str | None = Field(None, max_length=2000)
    recording_enabled: bool | None = None
    services: list[ServiceSpec] | None = None
    service_area: list[AreaEntry] | None = None
    emergency_rules: list[Text] | None = None
    dispatchers: list[DispatcherSpec] | None = None
    slot_minutes: int | None = Field(None, ge=5, le=24 * 60)
    visits_per_slot: int | None = Field(None, ge=1, le=1000)
    recording_retention_days: int | None = Field(None, ge=0, le=36500)
    transcript_retention_days: int | None = Field(None, ge=0, le=36500)
    sms_help_text: str | None = Field(None, max_length=1000)
    vocabulary: list[Text] | None = Field(None, max_length=500)

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # None is what a field left out defaults to; written out, the column cannot take it
        if value is None:
            raise ValueError("cannot be empty (null): leave the field out to keep it as it is")
        return value

    @field_validator("opening_hours")
    @classmethod
    def _opens_before_closing(cls, hours: dict[str, Any] | None) -> dict[str, Any] | None:
        for day, span in (hours or {}).items():
            if span and span[0] >= span[1]:
                raise ValueError(f"{day}: opens at {span[0]}, which is not before {span[1]}")
        return hours

    @model_validator(mode="after")
    def _one_row_per_phone(self) -> ProfileFile:
        phones = [d.phone for d in self.dispatchers or ()]
        twice = sorted({p for p in phones if phones.count(p) > 1})
        if twice:
            raise ValueError(f"dispatchers: {', '.join(twice)} listed more than once")
        return self


class _ProfileLoader(yaml.SafeLoader):
    """YAML 1.1 reads unquoted 9:00 as 540 (base 60) and 01106 as 582 (octal). Here plain
    scalars that look like numbers or dates stay strings; the profile model converts the
    fields that are numbers (slot_minutes: "120" -> 120) and checks the rest."""

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, Any]]]] = {
        first: [
            (tag, rx)
            for tag, rx in resolvers
            if tag
            not in (
                "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:float",
                "tag:yaml.org,2002:timestamp",
            )
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _ProfileDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # "07:00" and "01108" would load as strings anyway, but quoted they stay strings for
    # any YAML reader and for whoever edits the file next to them.
    quote = bool(value) and all(c.isdigit() or c in ":+-." for c in value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'" if quote else None)


_ProfileDumper.add_representer(str, _represent_str)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "profile"


def validate_profile(data: Any) -> ProfileFile:
    if not isinstance(data, dict):
        raise ProfileError("a profile is a YAML mapping of fields (name: ..., opening_hours: ...)")
    unknown = sorted(set(map(str, data)) - set(ProfileFile.model_fields))
    if unknown:
        raise ProfileError(f"unknown profile fields: {', '.join(unknown)}")
    try:
        return ProfileFile.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            # a tuple/union member adds its type to the location: keep the field path only
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            lines.append(f"{_where(loc)}: {msg}")
        lines = list(dict.fromkeys(lines))
        if len(lines) == 1:
            raise ProfileError(lines[0]) from None
        raise ProfileError(f"{len(lines)} problems:\n  " + "\n  ".join(lines)) from None


def load_profile_yaml(text: str) -> ProfileFile:
    try:
        data = yaml.load(text, Loader=_ProfileLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"not valid YAML{where}: {problem}") from None
    return validate_profile(data)


def dump_profile_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_ProfileDumper, sort_keys=False, allow_unicode=True)


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
    "vocabulary": [
        "Oak Street",
        "Birch Avenue",
        "Elm Street",
        "Maple Drive",
        "Cedar Lane",
        "Willow Court",
        "Chestnut Street",
        "Sycamore Road",
        "Main Street",
        "Riverside Drive",
        "Bluebird",
    ],
}
