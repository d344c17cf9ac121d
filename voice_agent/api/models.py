"""Response and request bodies of the dashboard API (`voice_agent.api.router`), for the OpenAPI
schema as much as for validation. Times are ISO 8601 with an offset: UTC, except a
booking's `scheduled_for`, which is in the business's own time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

Outcome = Literal["booked", "message_taken", "handed_off", "answered", "abandoned"]
Role = Literal["dispatcher", "admin", "owner"]
T = TypeVar("T")


class Problem(BaseModel):
    detail: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="how many match the filters, across all pages")
    limit: int
    offset: int


class CallSummary(BaseModel):
    call_sid: str = Field(examples=["CA0123456789abcdef0123456789abcdef"])
    from_: str = Field(alias="from", description="the caller, E.164", examples=["+15555550123"])
    to: str = Field(description="the business line that was called, E.164")
    status: str = Field(
        description="ringing, in_progress, completed, failed or interrupted (closed after a crash)"
    )
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    outcome: Outcome | None = Field(description="what came of the call, once it has ended")


class Segment(BaseModel):
    speaker: Literal["caller", "agent"]
    text: str
    start_ms: int = Field(description="from the start of the call")
    end_ms: int
    interrupted: bool = Field(description="the caller talked over this agent line")
    heard_text: str | None = Field(description="for an interrupted line: what was played")


class TurnTiming(BaseModel):
    index: int
    answered: bool
    latency_ms: float | None = Field(description="end of caller speech to first agent audio")
    endpoint_ms: float | None
    transcribe_ms: float | None
    policy_ms: float | None
    tts_ms: float | None
    send_ms: float | None


class CallBooking(BaseModel):
    scheduled_for: datetime = Field(description="in the business's time zone")
    duration_minutes: int
    service: str | None
    name: str | None
    phone: str | None
    address: str | None
    problem: str | None
    status: str


class CallMessage(BaseModel):
    name: str | None
    callback_number: str | None
    reason: str | None
    best_time: str | None
    text: str | None
    created_at: datetime | None


class CallHandoff(BaseModel):
    reason: str
    summary: str | None
    dispatcher: str | None
    dispatcher_phone: str | None
    requested_at: datetime | None
    dialed_at: datetime | None
    dial_status: str | None
    ended_at: datetime | None


class RecordingMeta(BaseModel):
    url: str = Field(description="GET it for the WAV (stereo: caller left, agent right)")
    duration_s: float | None
    bytes: int = Field(description="size of the encrypted file on disk")


class CallDetail(CallSummary):
    transcript: list[Segment]
    turns: list[TurnTiming]
    booking: CallBooking | None
    message: CallMessage | None
    handoff: CallHandoff | None
    recording: RecordingMeta | None


class BookingOut(BaseModel):
    id: int
    call_sid: str | None
    scheduled_for: datetime = Field(description="in the business's time zone")
    duration_minutes: int
    service: str | None
    name: str | None
    phone: str | None
    address: str | None
    problem: str | None
    status: str
    created_at: datetime


class MessageOut(BaseModel):
    id: int
    call_sid: str | None
    name: str | None
    callback_number: str | None
    reason: str | None
    best_time: str | None
    text: str | None
    created_at: datetime
    handled: bool
    handled_at: datetime | None


class HandoffOut(BaseModel):
    id: int
    call_sid: str | None
    reason: str
    summary: str | None
    dispatcher: str | None
    dispatcher_phone: str | None
    requested_at: datetime
    dialed_at: datetime | None
    dial_status: str | None = Field(description="answered, no-answer, busy, failed, canceled")
    ended_at: datetime | None


class Me(BaseModel):
    id: int
    business_id: int
    role: Role
    name: str | None


class UserOut(BaseModel):
    id: int
    name: str | None
    role: Role
    created_at: datetime
    disabled: bool


class NewUser(BaseModel):
    role: Role = Field(description="no higher than your own")
    # no control characters: PostgreSQL text refuses NUL, and a name is shown on one line
    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class NewUserOut(UserOut):
    token: str = Field(description="shown this once: only its hash is stored")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(examples=["user:3"])
    user_id: int | None
    action: str = Field(examples=["read_transcript"])
    target: str | None = Field(examples=["CA0123456789abcdef0123456789abcdef"])
    detail: dict[str, Any]
