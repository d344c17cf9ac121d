"""Reading and writing calls. Synchronous: async callers use asyncio.to_thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from storage.businesses import to_profile
from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import Business, Call, TranscriptSegment, Turn
from storage.outcomes import outcome_details
from storage.profiles import BusinessProfile
from storage.recordings import recording_json


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


RANK = {"abandoned": 1, "answered": 2, "handed_off": 3, "message_taken": 4, "booked": 5}


@dataclass
class FinishedCall:
    call_sid: str
    stream_sid: str | None
    ended_at: datetime
    outcome: str
    stream_started_at: datetime | None = None
    status: str = "completed"
    bad_messages: int = 0
    segments: list[SegmentRecord] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)


class CallStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def call_context(self, call_sid: str) -> tuple[BusinessProfile, str] | None:
        """The business a call reached and the caller's number."""
        with self._sessions() as s:
            call = s.scalar(
                select(Call)
                .options(selectinload(Call.business).selectinload(Business.dispatchers))
                .where(Call.call_sid == call_sid)
            )
            return (to_profile(call.business), call.from_number) if call else None

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
            call.status = done.status
            # A call can have two streams (the agent takes a message after an unanswered
            # <Dial>): the record grows, and the outcome is the most that came of it.
            if RANK.get(done.outcome, 0) >= RANK.get(call.outcome or "", 0):
                call.outcome = done.outcome
            call.ended_at = done.ended_at
            call.duration_s = round((done.ended_at - started).total_seconds(), 3)
            call.bad_messages += done.bad_messages
            offset = 0
            if done.stream_started_at is not None:
                offset = max(0, int((done.stream_started_at - started).total_seconds() * 1000))
            seq0, turn0 = len(call.segments), len(call.turns)
            for i, seg in enumerate(done.segments):
                shifted = {
                    **vars(seg),
                    "start_ms": seg.start_ms + offset,
                    "end_ms": seg.end_ms + offset,
                }
                call.segments.append(TranscriptSegment(seq=seq0 + i, **shifted))
            for t in done.turns:
                call.turns.append(Turn(**{**vars(t), "index": turn0 + t.index}))

    def list_calls(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._sessions() as s:
            calls = s.scalars(select(Call).order_by(Call.started_at.desc()).limit(limit))
            return [call_summary(c) for c in calls]

    def call_json(self, call_sid: str) -> dict[str, Any] | None:
        with self._sessions() as s:
            call = s.scalar(
                select(Call)
                .options(selectinload(Call.segments), selectinload(Call.turns))
                .where(Call.call_sid == call_sid)
            )
            if call is None:
                return None
            data = call_summary(call)
            data["transcript"] = [segment_json(seg) for seg in call.segments]
            data["turns"] = [turn_json(t) for t in call.turns]
            data.update(outcome_details(s, call.id), recording=recording_json(s, call.id))
            return data


def call_summary(call: Call) -> dict[str, Any]:
    """A call as `calls list`, the API and a privacy export show it."""
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


def segment_json(seg: TranscriptSegment) -> dict[str, Any]:
    return {
        "speaker": seg.speaker,
        "text": seg.text,
        "start_ms": seg.start_ms,
        "end_ms": seg.end_ms,
        "interrupted": seg.interrupted,
        "heard_text": seg.heard_text,
    }


def turn_json(t: Turn) -> dict[str, Any]:
    return {
        "index": t.index,
        "answered": t.answered,
        **{f"{stage}_ms": getattr(t, f"{stage}_ms") for stage in TURN_STAGES},
    }


TURN_STAGES = ("latency", "endpoint", "transcribe", "policy", "tts", "send")
