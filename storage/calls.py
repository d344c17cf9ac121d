"""Reading and writing calls. Synchronous: async callers use asyncio.to_thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from storage.db import session_factory
from storage.models import Business, Call, TranscriptSegment, Turn


@dataclass(frozen=True)
class BusinessInfo:
    id: int
    name: str
    line: str
    timezone: str
    opening_hours: dict[str, list[str]]
    greeting: str | None
    recording_enabled: bool


@dataclass
class SegmentRecord:
    speaker: str  # caller | agent
    text: str
    start_ms: int
    end_ms: int
    interrupted: bool = False
    heard_text: str | None = None


@dataclass
class TurnRecord:
    index: int
    answered: bool = False
    latency_ms: float | None = None
    endpoint_ms: float | None = None
    transcribe_ms: float | None = None
    policy_ms: float | None = None
    tts_ms: float | None = None
    send_ms: float | None = None


@dataclass
class FinishedCall:
    call_sid: str
    stream_sid: str | None
    ended_at: datetime
    outcome: str
    status: str = "completed"
    bad_messages: int = 0
    segments: list[SegmentRecord] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)


def _business_info(b: Business) -> BusinessInfo:
    return BusinessInfo(
        id=b.id,
        name=b.name,
        line=b.line,
        timezone=b.timezone,
        opening_hours=dict(b.opening_hours or {}),
        greeting=b.greeting,
        recording_enabled=b.recording_enabled,
    )


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite drops the offset; everything is stored in UTC
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat()


class CallStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def business_by_line(self, line: str) -> BusinessInfo | None:
        with self._sessions() as s:
            b = s.scalar(select(Business).where(Business.line == line))
            return _business_info(b) if b else None

    def call_context(self, call_sid: str) -> tuple[BusinessInfo, str] | None:
        """The business a call reached and the caller's number."""
        with self._sessions() as s:
            call = s.scalar(
                select(Call).options(selectinload(Call.business)).where(Call.call_sid == call_sid)
            )
            return (_business_info(call.business), call.from_number) if call else None

    def open_call(self, call_sid: str, business_id: int, from_number: str, to_number: str) -> None:
        """Idempotent: Twilio retries a webhook that timed out."""
        with self._sessions.begin() as s:
            if s.scalar(select(Call.id).where(Call.call_sid == call_sid)) is not None:
                return
            s.add(
                Call(
                    call_sid=call_sid,
                    business_id=business_id,
                    from_number=from_number,
                    to_number=to_number,
                    status="ringing",
                    started_at=datetime.now(UTC),
                )
            )

    def mark_in_progress(self, call_sid: str, stream_sid: str) -> None:
        with self._sessions.begin() as s:
            call = s.scalar(select(Call).where(Call.call_sid == call_sid))
            if call is not None:
                call.status, call.stream_sid = "in_progress", stream_sid

    def finalize(self, done: FinishedCall) -> None:
        with self._sessions.begin() as s:
            call = s.scalar(select(Call).where(Call.call_sid == done.call_sid))
            if call is None:
                raise LookupError(f"no call {done.call_sid}")
            started = (
                call.started_at if call.started_at.tzinfo else call.started_at.replace(tzinfo=UTC)
            )
            call.stream_sid = done.stream_sid or call.stream_sid
            call.status, call.outcome = done.status, done.outcome
            call.ended_at = done.ended_at
            call.duration_s = round((done.ended_at - started).total_seconds(), 3)
            call.bad_messages = done.bad_messages
            call.segments = [
                TranscriptSegment(seq=i, **vars(seg)) for i, seg in enumerate(done.segments)
            ]
            call.turns = [Turn(**vars(t)) for t in done.turns]

    def list_calls(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._sessions() as s:
            calls = s.scalars(select(Call).order_by(Call.started_at.desc()).limit(limit))
            return [self._summary(c) for c in calls]

    def call_json(self, call_sid: str) -> dict[str, Any] | None:
        with self._sessions() as s:
            call = s.scalar(
                select(Call)
                .options(selectinload(Call.segments), selectinload(Call.turns))
                .where(Call.call_sid == call_sid)
            )
            if call is None:
                return None
            data = self._summary(call)
            data["transcript"] = [
                {
                    "speaker": seg.speaker,
                    "text": seg.text,
                    "start_ms": seg.start_ms,
                    "end_ms": seg.end_ms,
                    "interrupted": seg.interrupted,
                    "heard_text": seg.heard_text,
                }
                for seg in call.segments
            ]
            data["turns"] = [
                {
                    "index": t.index,
                    "answered": t.answered,
                    "latency_ms": t.latency_ms,
                    "endpoint_ms": t.endpoint_ms,
                    "transcribe_ms": t.transcribe_ms,
                    "policy_ms": t.policy_ms,
                    "tts_ms": t.tts_ms,
                    "send_ms": t.send_ms,
                }
                for t in call.turns
            ]
            # Filled in by the receptionist and recording features; null until they exist.
            data.update(booking=None, message=None, handoff=None, recording=None)
            return data

    @staticmethod
    def _summary(call: Call) -> dict[str, Any]:
        return {
            "call_sid": call.call_sid,
            "from": call.from_number,
            "to": call.to_number,
            "status": call.status,
            "started_at": _iso(call.started_at),
            "ended_at": _iso(call.ended_at),
            "duration_s": call.duration_s,
            "outcome": call.outcome,
        }
