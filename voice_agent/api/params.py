"""The dashboard API's parameter types, their parsing into 422s, and the error responses
its routes declare."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError

from storage.tenant_queries import When, parse_when
from voice_agent.api.models import Problem

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or disabled token"}
}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "Your role does not allow this"}
}


def missing(what: str) -> dict[int | str, dict[str, Any]]:
    return {404: {"model": Problem, "description": f"No such {what} in your business"}}


# Bounds the databases can take: ids are PostgreSQL `integer`; a larger id or offset is a
# 422, not a driver error (or an OverflowError on SQLite) turned into a 500.
DB_INT_MAX = 2**31 - 1
# Dates from here to there: a bare date's end is the next day, and a time zone's offset
# moves a moment by up to a day; at the edges of Python's range either overflows.
EARLIEST, LATEST = date(1900, 1, 1), date(9998, 12, 31)

CallSid = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[!-~]+$",  # printable ASCII: no NUL, which PostgreSQL text refuses
        description="Twilio's CallSid, CA…",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX)]
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]


def invalid(name: str, value: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (HTTPValidationError in the schema)."""
    error = {"type": "value_error", "loc": ("query", name), "msg": message, "input": value}
    return RequestValidationError([error])


def when(name: str, value: str | None) -> When | None:
    if value is None:
        return None
    try:
        parsed = parse_when(value)
    except ValueError:
        msg = "not an ISO 8601 date (2030-05-07) or date-time (2030-05-07T09:00)"
        raise invalid(name, value, msg) from None
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    if not EARLIEST <= day <= LATEST:
        raise invalid(name, value, f"out of range: dates from {EARLIEST} to {LATEST}")
    return parsed


def e164(value: str | None) -> str | None:
    """`+15555550123`; a `+` sent unencoded arrives as a space, so that is accepted too."""
    if value is None:
        return None
    digits = value.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 2 <= len(digits) <= 15) or digits[0] == "0":
        raise invalid("caller", value, "not an E.164 number like +15555550123")
    return "+" + digits
