"""The call record: what the service keeps, and nothing it does not need."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


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


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    stream_sid: Mapped[str | None] = mapped_column(String(64))
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    # ringing -> in_progress -> completed | failed
    status: Mapped[str] = mapped_column(String(16), default="ringing")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(32))
    bad_messages: Mapped[int] = mapped_column(Integer, default=0)

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
