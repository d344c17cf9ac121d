"""Calls a dead process left open, closed from what was stored before it died.

A process killed mid-call (kill -9, OOM, power) leaves its call `in_progress` with the lines
CallStore.append_line kept as they were said, and perhaps an encrypted recording file with
no row (RecordingStore.keep never ran). `recover` turns that into an honest record:

- the call gets status `interrupted` (`failed` if no stream ever started), `ended_at` at
  its last sign of life (its last line's end or last heartbeat, whichever is later), the
  provisional lines as its transcript, and the outcome its stored rows show: a booking ->
  booked, a message -> message_taken, a handoff -> handed_off, any caller line ->
  answered, else abandoned (never less than an outcome an earlier stream already stored);
- an unregistered recording file whose call has ended is registered with it (readable up
  to its last complete one-second record); one whose call does not exist, whose caller's
  data was deleted, or that holds no audio, is removed.

Which calls are dead: a call ringing or in progress is closed when

1. the process that holds its stream (`calls.owner`, set by mark_in_progress) is gone:
   `owner_alive(owner)` is False. The default answers only for this host (a pid that no
   longer exists, or our own pid with another start-up token: a restarted container) and
   says "alive" for other hosts; or
2. it showed no sign of life (open, stream start, a line, a heartbeat) for `older_than`
   (default STALE_AFTER, 10 minutes), whoever owns it.

So several workers sharing a database can all run it: a worker never closes a call another
live worker on its host holds, and a call held on another host only once it is silent for
`older_than`, which a live stream prevents with CallStore.touch heartbeats. Files are only
attached once their call has ended, and a file is attached at most once (registration is
idempotent), so running it twice, or in two workers at once, changes nothing more.
Synchronous: call it at start-up (before taking calls is fine, it only touches calls that
are not live) and then every few minutes, e.g. in a worker thread next to journal replay."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, exists, func, select, update

from storage.calls import LIVE_STATUSES, RANK, STALE_AFTER, last_activity, owner_alive
from storage.db import session_factory, utc
from storage.erasure import erase_call
from storage.models import Booking, Call, Handoff, Message, TranscriptSegment
from storage.recordings import (
    BYTES_PER_SECOND,
    RecordingError,
    RecordingStore,
    call_sid_of,
    readable_pcm_bytes,
)

log = logging.getLogger(__name__)


def recover(
    engine: Engine,
    recordings: RecordingStore | None,
    *,
    older_than: timedelta = STALE_AFTER,
    owner_alive: Callable[[str], bool] = owner_alive,
    owner_quiet: timedelta = timedelta(0),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close the calls dead processes left open and settle unregistered recording files
    (see the module's docstring for the rules). A call whose owner looks dead is closed
    only once it has also been quiet for `owner_quiet` (no line, no heartbeat): a worker
    whose heartbeat key lapsed while it was cut off from Redis, but still writes to the
    database, keeps its calls. Returns what was done:
    `{"calls_closed": [call_sid, ...], "lines_kept": n, "recordings_attached": n,
    "recording_files_removed": n}`."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    sessions = session_factory(engine)
    with sessions() as s:
        live = s.scalars(select(Call).where(Call.status.in_(LIVE_STATUSES))).all()
    dead_owner = {
        c.id
        for c in live
        if c.owner is not None
        and now - last_activity(c) >= owner_quiet
        and not owner_alive(c.owner)
    }
    result: dict[str, Any] = {
        "calls_closed": [],
        "lines_kept": 0,
        "recordings_attached": 0,
        "recording_files_removed": 0,
    }
    for call in live:
        if call.id in dead_owner or now - last_activity(call) >= older_than:
            closed = _close(sessions, call.id, now, older_than, call.id in dead_owner)
            if closed is not None:
                result["calls_closed"].append(closed[0])
                result["lines_kept"] += closed[1]
    if recordings is not None:
        attached, removed = _settle_files(sessions, recordings, now, older_than, dead_owner)
        result["recordings_attached"], result["recording_files_removed"] = attached, removed
    if any(result.values()):
        log.warning(
            "recovered %d call(s) left open by a dead process (%s); %d recording(s) "
            "attached, %d file(s) removed",
            len(result["calls_closed"]),
            ", ".join(result["calls_closed"]),
            result["recordings_attached"],
            result["recording_files_removed"],
        )
    return result


def _close(
    sessions: Any, call_id: int, now: datetime, older_than: timedelta, owner_dead: bool
) -> tuple[str, int] | None:
    with sessions.begin() as s:
        call = s.scalar(select(Call).where(Call.id == call_id).with_for_update())
        # Checked again under the lock: it may have ended, or spoken, since the first look.
        if call is None or call.status not in LIVE_STATUSES:
            return None
        if not owner_dead and now - last_activity(call) < older_than:
            return None
        started = utc(call.started_at)
        last_end = s.scalar(
            select(func.max(TranscriptSegment.end_ms)).where(TranscriptSegment.call_id == call.id)
        )
        ended = max(
            started,
            last_activity(call),
            started + timedelta(milliseconds=last_end or 0),
        )
        outcome = _stored_outcome(s, call)
        if RANK.get(outcome, 0) >= RANK.get(call.outcome or "", 0):
            call.outcome = outcome
        streamed = call.stream_sid is not None or call.status == "in_progress"
        call.status = "interrupted" if streamed else "failed"
        call.ended_at = ended
        call.duration_s = round((ended - started).total_seconds(), 3)
        kept = 0
        if call.erased:
            erase_call(s, call)
        else:
            kept = s.execute(
                update(TranscriptSegment)
                .where(
                    TranscriptSegment.call_id == call.id,
                    TranscriptSegment.provisional.is_(True),
                )
                .values(provisional=False)
            ).rowcount
        return call.call_sid, kept


def _stored_outcome(s: Any, call: Call) -> str:
    def has(where: Any) -> bool:
        return bool(s.scalar(select(exists().where(where))))

    if has((Booking.call_id == call.id) & (Booking.status == "confirmed")):
        return "booked"
    if has(Message.call_id == call.id):
        return "message_taken"
    if has(Handoff.call_id == call.id):
        return "handed_off"
    if has((TranscriptSegment.call_id == call.id) & (TranscriptSegment.speaker == "caller")):
        return "answered"
    return "abandoned"


def _settle_files(
    sessions: Any,
    recordings: RecordingStore,
    now: datetime,
    older_than: timedelta,
    dead_owner: set[int],
) -> tuple[int, int]:
    attached = removed = 0
    for path in recordings.unregistered():
        sid = call_sid_of(path)
        with sessions() as s:
            row = s.execute(
                select(Call.id, Call.status, Call.erased).where(Call.call_sid == sid)
            ).first()
        try:
            if row is None or row.erased:
                path.unlink(missing_ok=True)
                removed += 1
                continue
            if row.status in LIVE_STATUSES:
                continue  # being recorded by a live call
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            if row.id not in dead_owner and now - modified < older_than:
                continue  # just closed: its own stream may be registering it right now
            try:
                pcm = readable_pcm_bytes(path, recordings.key)
            except RecordingError as exc:
                log.error("recording %s cannot be read (%s); left as it is", path.name, exc)
                continue
            if pcm == 0:
                path.unlink(missing_ok=True)
                removed += 1
                continue
            duration = round(pcm / BYTES_PER_SECOND, 2)
            attached += recordings.register(sid, path, duration, created_at=modified)
        except FileNotFoundError:
            continue  # removed meanwhile (its own keep, a deletion)
    return attached, removed
