"""Retention: what a business keeps longer than its profile says is purged, daily.

Per business: recordings older than `recording_retention_days` (file, then row), transcript
segments of calls that started more than `transcript_retention_days` ago, and the bodies of
SMS older than that. CRM deliveries a shutting-down worker parked and no worker took up
within a day are dropped (their bodies carry call details). Calls stay as anonymous
statistics; consent records are kept. Every purge is idempotent: running it twice removes
nothing the second time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update

from storage.audit import write_audit
from storage.db import session_factory, unbounded_statements
from storage.models import (
    Business,
    Call,
    Recording,
    SmsMessage,
    TranscriptSegment,
    WebhookParked,
)
from storage.privacy import recording_infos
from storage.recordings import RecordingStore

log = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
# A failed purge is retried after a minute, then 2, 4, ... minutes, at most an hour apart.
RETRY_FIRST_S = 60.0
RETRY_MAX_S = 3600.0
# The purge's deletions may outlast the request-sized statement timeout (storage.db).
PURGE_STATEMENT_TIMEOUT_S = 600.0
# An unregistered file younger than this may belong to a call still being recorded.
ORPHAN_GRACE = timedelta(days=2)
PARKED_MAX_AGE = timedelta(days=1)


def purge(
    engine: Engine, recordings: RecordingStore, now: datetime | None = None
) -> dict[str, Any]:
    """Apply every business's retention as of `now` (default: the current time)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    sessions = session_factory(engine)
    with sessions() as s:
        businesses = s.execute(
            select(
                Business.id, Business.recording_retention_days, Business.transcript_retention_days
            ).order_by(Business.id)
        ).all()
    results = []
    for business_id, recording_days, transcript_days in businesses:
        results.append(
            _purge_business(engine, recordings, business_id, recording_days, transcript_days, now)
        )
    orphans = 0
    if recordings is not None:
        longest = max((r or 0 for _, r, _ in businesses), default=0)
        orphans = _purge_orphan_files(recordings, now, longest)
    totals = {
        key: sum(r[key] for r in results)
        for key in ("recordings", "recording_files", "transcript_segments", "sms_bodies")
    }
    totals["orphan_files"] = orphans
    with sessions.begin() as s:
        totals["parked_webhooks"] = s.execute(
            delete(WebhookParked).where(WebhookParked.parked_at < now - PARKED_MAX_AGE)
        ).rowcount
    return {"now": now.isoformat(), "businesses": results, "totals": totals}


def _purge_business(
    engine: Engine,
    recordings: RecordingStore | None,
    business_id: int,
    recording_days: int | None,
    transcript_days: int | None,
    now: datetime,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "business_id": business_id,
        "recording_retention_days": recording_days,
        "transcript_retention_days": transcript_days,
        "recordings": 0,
        "recording_files": 0,
        "transcript_segments": 0,
        "sms_bodies": 0,
    }
    sessions = session_factory(engine)
    if recordings is not None and recording_days is not None and recording_days >= 0:
        cutoff = now - timedelta(days=recording_days)
        with sessions() as s:
            infos = recording_infos(
                s,
                recordings,
                (Call.business_id == business_id) & (Recording.created_at < cutoff),
                business_id,
            )
        for info in infos:  # the file first, then the row (RecordingStore.delete)
            result["recording_files"] += info.path.exists()
            recordings.delete(info)
            result["recordings"] += 1
    with sessions.begin() as s:
        unbounded_statements(s, PURGE_STATEMENT_TIMEOUT_S)  # a year of lines may take a while
        if transcript_days is not None and transcript_days >= 0:
            cutoff = now - timedelta(days=transcript_days)
            old_calls = select(Call.id).where(
                Call.business_id == business_id, Call.started_at < cutoff
            )
            result["transcript_segments"] = s.execute(
                delete(TranscriptSegment).where(TranscriptSegment.call_id.in_(old_calls))
            ).rowcount
            result["sms_bodies"] = s.execute(
                update(SmsMessage)
                .where(
                    SmsMessage.business_id == business_id,
                    SmsMessage.created_at < cutoff,
                    (SmsMessage.body != "") | SmsMessage.error.is_not(None),
                )
                .values(body="", error=None)
            ).rowcount
        counts = {k: result[k] for k in ("recordings", "transcript_segments", "sms_bodies")}
        if any(counts.values()):  # a run that removed nothing leaves no trace: idempotent
            write_audit(
                s,
                business_id,
                "system",
                "retention_purge",
                None,
                {
                    **counts,
                    "recording_files": result["recording_files"],
                    "recording_retention_days": recording_days,
                    "transcript_retention_days": transcript_days,
                    "as_of": now.isoformat(),
                },
            )
    return result


def _purge_orphan_files(recordings: RecordingStore, now: datetime, max_days: int) -> int:
    """Encrypted files no row points to (a crash between writing and registering one) are
    removed once older than the longest recording retention of any business (and never
    before ORPHAN_GRACE, so a call being recorded right now keeps its file)."""
    cutoff = (now - max(timedelta(days=max_days), ORPHAN_GRACE)).timestamp()
    removed = 0
    for path in recordings.unregistered():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


async def run_daily(
    engine: Engine,
    recordings: RecordingStore | None,
    interval_s: float = DAY_S,
    first_delay_s: float = 60.0,
    *,
    retry_first_s: float = RETRY_FIRST_S,
    retry_max_s: float = RETRY_MAX_S,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Purge shortly after start-up, then every `interval_s`, until cancelled. A failed run
    (the database down, a full disk) is logged and retried soon: after `retry_first_s`,
    doubling up to `retry_max_s` (never later than the next regular run), and back to
    every `interval_s` once a run succeeds. It never stops the service. `sleep` is
    injectable for tests."""
    await sleep(first_delay_s)
    failures = 0
    while True:
        try:
            summary = await asyncio.to_thread(purge, engine, recordings)
        except Exception:
            delay = min(retry_first_s * 2.0 ** min(failures, 60), retry_max_s, interval_s)
            failures += 1
            log.exception(
                "retention purge failed (%d in a row); retrying in %.0f s", failures, delay
            )
        else:
            if failures:
                log.info("retention purge succeeded again after %d failed runs", failures)
            failures, delay = 0, interval_s
            log.info("retention purge: %s", summary["totals"])
        await sleep(delay)
