"""The call record: what the service keeps, and nothing it does not need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class FieldTooLong(ValueError):
    """A value longer than its column, refused before the database sees it (PostgreSQL
    would refuse it deep in the driver, SQLite would keep it). Names the column and the
    lengths, never the value."""


@event.listens_for(Base, "before_insert", propagate=True)
@event.listens_for(Base, "before_update", propagate=True)
def _check_lengths(mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        limit = getattr(column.type, "length", None)
        if limit is None or not isinstance(column.type, String):
            continue
        value = target.__dict__.get(prop.key)
        if isinstance(value, str) and len(value) > limit:
            raise FieldTooLong(
                f"{mapper.local_table.name}.{column.name}: {len(value)} characters "
                f"(at most {limit})"
            )


class Business(Base):
    __tablename__ = "businesses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    line: Mapped[str] = mapped_column(String(32), unique=True, index=True)  # E.164
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": ["07:00", "19:00"], ...}; a missing day is closed
    opening_hours: Mapped[dict] = mapped_column(JSON, default=dict)
    greeting: Mapped[str | None] = mapped_column(Text)
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    services: Mapped[list] = mapped_column(JSON, default=list)
    service_area: Mapped[list] = mapped_column(JSON, default=list)
    emergency_rules: Mapped[list] = mapped_column(JSON, default=list)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=120)
    visits_per_slot: Mapped[int] = mapped_column(Integer, default=2)
    # Retention: what is older is purged (recordings, then transcripts), daily.
    recording_retention_days: Mapped[int] = mapped_column(Integer, default=30)
    transcript_retention_days: Mapped[int] = mapped_column(Integer, default=365)
    sms_help_text: Mapped[str | None] = mapped_column(Text)
    vocabulary: Mapped[list] = mapped_column(JSON, default=list)

    dispatchers: Mapped[list[Dispatcher]] = relationship(
        order_by="Dispatcher.id", cascade="all, delete-orphan"
    )


class Dispatcher(Base):
    __tablename__ = "dispatchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)
    # Alerts go out only with a consent record behind this flag (see consent_records).
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    stream_sid: Mapped[str | None] = mapped_column(String(64))
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    # Caller-supplied: E.164, or a SIP caller id (see storage.fields.caller_id)
    from_number: Mapped[str] = mapped_column(String(255))
    to_number: Mapped[str] = mapped_column(String(255))
    # ringing -> in_progress -> completed | failed; interrupted: left open by a process that
    # died mid-call and closed by storage.recovery (the transcript is what was said until then)
    status: Mapped[str] = mapped_column(String(16), default="ringing")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(32))
    bad_messages: Mapped[int] = mapped_column(Integer, default=0)
    # Sign of life while ringing or in progress (open, stream start, each transcript line,
    # heartbeats) and the process holding the stream: how recovery tells a crash from a call.
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(128))
    # The caller's data was deleted while the call was live: nothing personal is kept for it.
    erased: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    business: Mapped[Business] = relationship()
    segments: Mapped[list[TranscriptSegment]] = relationship(
        order_by="TranscriptSegment.seq", cascade="all, delete-orphan"
    )
    turns: Mapped[list[Turn]] = relationship(order_by="Turn.index", cascade="all, delete-orphan")


class TranscriptSegment(Base):
    __tablename__ = "transcript_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(8))  # caller | agent
    text: Mapped[str] = mapped_column(Text)
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    # For an interrupted agent line: the sentences whose marks came back.
    heard_text: Mapped[str | None] = mapped_column(Text)
    # Written as it was said (CallStore.append_line); replaced by the final lines when the
    # stream ends, kept as final by recovery when the process died first.
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Turn(Base):
    """One caller turn and the timing of the agent's answer to it."""

    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    endpoint_ms: Mapped[float | None] = mapped_column(Float)
    transcribe_ms: Mapped[float | None] = mapped_column(Float)
    policy_ms: Mapped[float | None] = mapped_column(Float)
    tts_ms: Mapped[float | None] = mapped_column(Float)
    send_ms: Mapped[float | None] = mapped_column(Float)
    hangover_ms: Mapped[int | None] = mapped_column(Integer)  # the silence that closed it


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    scheduled_for: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # UTC
    duration_minutes: Mapped[int] = mapped_column(Integer)
    service: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    callback_number: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    best_time: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    dispatcher_id: Mapped[int | None] = mapped_column(ForeignKey("dispatchers.id"))
    dispatcher_name: Mapped[str | None] = mapped_column(String(200))
    dispatcher_phone: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dialed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # answered | no-answer | busy | failed | canceled, from Twilio's <Dial action>
    dial_status: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsentRecord(Base):
    """Proof of consent (or its withdrawal). Kept even when a caller's data is deleted."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    phone: Mapped[str] = mapped_column(String(255), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    opt_in: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32))  # call | sms_keyword | admin
    wording: Mapped[str] = mapped_column(Text)  # what the person was asked, or sent
    call_sid: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SmsMessage(Base):
    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64))
    to_number: Mapped[str] = mapped_column(String(255), index=True)
    purpose: Mapped[str] = mapped_column(String(32))  # booking_confirmation | dispatcher_alert
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # sent | refused | failed
    twilio_sid: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list] = mapped_column(JSON, default=list)  # empty: every event
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base):
    """One attempt to deliver one event to one endpoint."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookParked(Base):
    """A delivery a worker had not finished when it shut down (retrying, or not yet sent):
    another worker takes it up and goes on counting its attempts."""

    __tablename__ = "webhook_parked"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the signed bytes, as sent
    attempts_done: Mapped[int] = mapped_column(Integer)
    parked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    """Someone who works for a business. Tokens are stored as SHA-256 hashes only."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # owner | admin | dispatcher
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class PhoneNumber(Base):
    """Numbers a business answers on (its main line is Business.line)."""

    __tablename__ = "phone_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))


class Recording(Base):
    """An encrypted stereo WAV of a call (caller left, agent right), on disk."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)  # relative to the recordings directory
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who read or changed what. Written for every transcript or recording read."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int | None] = mapped_column(ForeignKey("businesses.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(64))  # "user:3", "cli", "system"
    action: Mapped[str] = mapped_column(String(64))  # read_transcript, delete_caller, ...
    target: Mapped[str | None] = mapped_column(String(128))  # a call SID, a phone hash, ...
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
