"""What the dashboard API's modules share: helpers, parameter types, error responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError

from storage.recordings import RecordingStore
from storage.users import UserInfo
from voice_agent.api_models import Problem
from voice_agent.api_queries import TenantQueries, When, parse_when

FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "Your role does not allow this"}
}


def missing(what: str) -> dict[int | str, dict[str, Any]]:
    return {404: {"model": Problem, "description": f"No such {what} in your business"}}


CallSid = Annotated[str, Path(max_length=64, description="Twilio's CallSid, CA…")]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0)]


def queries(request: Request) -> TenantQueries:
    state = request.app.state
    found = getattr(state, "api_queries", None)
    if found is None:
        found = state.api_queries = TenantQueries(state.services.db)
    return found


def recordings(request: Request) -> RecordingStore | None:
    return getattr(request.app.state.services, "recordings", None)


def actor(user: UserInfo) -> str:
    return f"user:{user.id}"


def invalid(name: str, value: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (HTTPValidationError in the schema)."""
    error = {"type": "value_error", "loc": ("query", name), "msg": message, "input": value}
    return RequestValidationError([error])


def when(name: str, value: str | None) -> When | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError:
        msg = "not an ISO 8601 date (2030-05-07) or date-time (2030-05-07T09:00)"
        raise invalid(name, value, msg) from None


def e164(value: str | None) -> str | None:
    """`+15555550123`; a `+` sent unencoded arrives as a space, so that is accepted too."""
    if value is None:
        return None
    digits = value.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 2 <= len(digits) <= 15) or digits[0] == "0":
        raise invalid("caller", value, "not an E.164 number like +15555550123")
    return "+" + digits
