"""Reading and writing calls. Synchronous: async callers use asyncio.to_thread."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from storage.businesses import to_profile
from storage.db import iso as _iso
from storage.db import session_factory, utc
from storage.erasure import erase_call
from storage.fields import caller_id
from storage.models import Business, Call, TranscriptSegment, Turn
from storage.outcomes import outcome_details
from storage.profiles import BusinessProfile
from storage.reception import add_message
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
    hangover_ms: int | None = None  # the silence that closed the turn


RANK = {"abandoned": 1, "answered": 2, "handed_off": 3, "message_taken": 4, "booked": 5}

# Statuses of a call not finished yet. `interrupted` is a call whose process died before
# finishing it, closed by storage.recovery.
LIVE_STATUSES = ("ringing", "in_progress")
# A live call with no sign of life (CallStore.open_call, mark_in_progress, append_line,
# touch) for this long is taken for one whose process died: recovery closes it, privacy
# deletion anonymizes it at once. The service calls `touch` more often than this.
STALE_AFTER = timedelta(minutes=10)

_INCARNATION = secrets.token_hex(6)


def process_owner() -> str:
    """This process, as `calls.owner` names it: host, pid and a token drawn at import, so
    a restarted service with the same pid (PID 1 in a container) is a different owner."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{_INCARNATION}"


def owner_alive(owner: str, elsewhere: Callable[[str], bool | None] | None = None) -> bool:
    """Whether the process named by `calls.owner` (process_owner) may still be running.
    This host's processes are checked directly; another host's are asked of `elsewhere`
    (the workers' heartbeats in Redis: True, False, or None for "cannot tell"), and count
    as alive when it cannot tell."""
    try:
        host, pid_text, token = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True  # not ours to judge
    if host != socket.gethostname()[:80]:
        verdict = elsewhere(owner) if elsewhere is not None else None
        return True if verdict is None else verdict
    if pid == os.getpid():
        return token == _INCARNATION  # same pid, earlier start-up: that process is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, someone else's
    return True


def last_activity(call: Call) -> datetime:
    return utc(call.last_activity_at or call.started_at)


def is_stale(call: Call, now: datetime, stale_after: timedelta = STALE_AFTER) -> bool:
    """A live call whose process is gone: the process holding its stream is known dead
    (owner_alive, this host only), or it showed no sign of life for `stale_after`."""
    if call.status not in LIVE_STATUSES:
        return False
    if call.owner is not None and not owner_alive(call.owner):
        return True
    return now - last_activity(call) >= stale_after


def _offset_ms(call: Call, stream_started_at: datetime | None) -> int:
    """Where a stream's line offsets start on the call's own clock (ms since started_at)."""
    if stream_started_at is None:
        return 0
    return max(0, int((stream_started_at - utc(call.started_at)).total_seconds() * 1000))


def _next_seq(s: Session, call_id: int) -> int:
    """The `seq` a call's next transcript line gets: after every line stored so far."""
    return s.scalar(
        select(func.coalesce(func.max(TranscriptSegment.seq) + 1, 0)).where(
            TranscriptSegment.call_id == call_id
        )
    )


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
    # Messages the call took that the database did not take during the call (it was down):
    # stored with the record, so that someone calls back however long the outage.
    messages: list[dict[str, Any]] = field(default_factory=list)


class CallStore:
    def __init__(self, engine: Engine, owner: str | None = None) -> None:
        self._sessions = session_factory(engine)
        self.owner = owner or process_owner()

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
        """Idempotent: Twilio retries a webhook that timed out. Numbers are stored through
        storage.fields.caller_id: a SIP caller id is kept, an absurdly long one is shortened
        to a stable form instead of failing the call."""
        now = datetime.now(UTC)
        with self._sessions.begin() as s:
            if s.scalar(select(Call.id).where(Call.call_sid == call_sid)) is not None:
                return
            s.add(
                Call(
                    call_sid=call_sid,
                    business_id=business_id,
                    from_number=caller_id(from_number),
                    to_number=caller_id(to_number),
                    status="ringing",
                    started_at=now,
                    last_activity_at=now,
                )
            )

    def mark_in_progress(self, call_sid: str, stream_sid: str) -> None:
        """The stream started in this process: it owns the call until finalize."""
        with self._sessions.begin() as s:
            call = s.scalar(select(Call).where(Call.call_sid == call_sid))
            if call is not None:
                call.status, call.stream_sid = "in_progress", stream_sid
                call.owner, call.last_activity_at = self.owner, datetime.now(UTC)

    def touch(self, *call_sids: str) -> None:
        """Heartbeat for streams still open (the service beats every recovery interval, from
        a worker thread, in one statement for all of a worker's calls): a long silence is
        not taken for a crash (see STALE_AFTER)."""
        if not call_sids:
            return
        with self._sessions.begin() as s:
            s.execute(
                update(Call)
                .where(Call.call_sid.in_(call_sids), Call.status.in_(LIVE_STATUSES))
                .values(last_activity_at=datetime.now(UTC))
            )

    def append_line(
        self, call_sid: str, segment: SegmentRecord, stream_started_at: datetime | None
    ) -> bool:
        """Keep one transcript line as soon as it is said (caller or agent), so a process
        that dies mid-call loses nothing said before. Synchronous: call it from a worker
        thread, for each line, with the stream's start time (the same `stream_started_at`
        finalize gets; offsets are shifted by it exactly as finalize shifts them).

        The line is provisional: `finalize` for the same stream replaces the stream's
        provisional lines with its final set (which has the interrupted/heard_text flags),
        so nothing is kept twice; if the process dies first, storage.recovery keeps them as
        the transcript. Returns False, storing nothing, for an unknown call, one that has
        ended (a late line is in the final set already), or one whose caller's data was
        deleted while it was live."""
        now = datetime.now(UTC)
        with self._sessions.begin() as s:
            # The row lock (PostgreSQL) orders two lines of one call written at once.
            call = s.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
            if call is None or call.erased or call.status not in LIVE_STATUSES:
                return False  # a line arriving after finalize is in the final set already
            offset = _offset_ms(call, stream_started_at)
            s.add(
                TranscriptSegment(
                    call_id=call.id,
                    seq=_next_seq(s, call.id),
                    speaker=segment.speaker,
                    text=segment.text,
                    start_ms=segment.start_ms + offset,
                    end_ms=segment.end_ms + offset,
                    interrupted=segment.interrupted,
                    heard_text=segment.heard_text,
                    provisional=True,
                )
            )
            call.last_activity_at = now
            return True

    def finalize(self, done: FinishedCall) -> None:
        with self._sessions.begin() as s:
            call = s.scalar(select(Call).where(Call.call_sid == done.call_sid))
            if call is None:
                raise LookupError(f"no call {done.call_sid}")
            if call.ended_at is not None and utc(call.ended_at) == done.ended_at:
                # This very record is stored already: a finalize that outlived its caller's
                # wait (the record went to the journal too) and the journal's replay each
                # store it, in either order, once.
                return
            started = utc(call.started_at)
            call.stream_sid = done.stream_sid or call.stream_sid
            # A call can have two streams (the agent takes a message after an unanswered
            # <Dial>): the record grows, and the outcome is the most that came of it.
            if RANK.get(done.outcome, 0) >= RANK.get(call.outcome or "", 0):
                call.outcome = done.outcome
            call.ended_at = done.ended_at
            call.duration_s = round((done.ended_at - started).total_seconds(), 3)
            call.bad_messages += done.bad_messages
            offset = _offset_ms(call, done.stream_started_at)
            # This stream's lines kept as they were said give way to the final set. An
            # earlier stream's lines are final already (its own finalize ran first) and
            # start before this stream's offset. A call recovery closed in the meantime
            # (the final record waited in the journal) had its lines made final from the
            # provisional ones: the stream's record replaces those too.
            stale = [
                TranscriptSegment.call_id == call.id,
                TranscriptSegment.start_ms >= offset,
            ]
            if call.status != "interrupted":
                stale.append(TranscriptSegment.provisional.is_(True))
            call.status = done.status
            s.execute(delete(TranscriptSegment).where(*stale))
            if call.erased:  # the caller's data was deleted while the call was live
                erase_call(s, call)
                return
            self._append_final(s, call, done, offset)
            for fields in done.messages:
                add_message(s, call.business_id, call.id, fields, once=True)

    @staticmethod
    def _append_final(s: Session, call: Call, done: FinishedCall, offset: int) -> None:
        seq0 = _next_seq(s, call.id)
        turn0 = s.scalar(select(func.count()).select_from(Turn).where(Turn.call_id == call.id))
        for i, seg in enumerate(done.segments):
            shifted = {
                **vars(seg),
                "start_ms": seg.start_ms + offset,
                "end_ms": seg.end_ms + offset,
            }
            s.add(TranscriptSegment(call_id=call.id, seq=seq0 + i, **shifted))
        for t in done.turns:
            s.add(Turn(**{**vars(t), "call_id": call.id, "index": turn0 + t.index}))

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
        "hangover_ms": t.hangover_ms,
    }


TURN_STAGES = ("latency", "endpoint", "transcribe", "policy", "tts", "send")
