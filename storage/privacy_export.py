"""A caller's data, exported: everything one business keeps about one number as one JSON
document, and the decrypted recordings beside it (see storage.privacy for the scope)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from storage.audit import write_audit
from storage.calls import call_summary, segment_json, turn_json
from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import (
    Booking,
    ConsentRecord,
    Handoff,
    Message,
    SmsMessage,
    TranscriptSegment,
    Turn,
)
from storage.outcomes import booking_json, message_json
from storage.phone_refs import phone_ref
from storage.privacy import caller_phone, caller_scope, existing_business, recording_rows
from storage.recordings import RecordingError, RecordingInfo, RecordingStore


def _recording_files(infos: list[RecordingInfo]) -> list[str]:
    """Export file names: <call_sid>.wav, then <call_sid>-2.wav for a call's second one."""
    names, seen = [], {}
    for info in infos:
        seen[info.call_sid] = seen.get(info.call_sid, 0) + 1
        n = seen[info.call_sid]
        names.append(f"{info.call_sid}.wav" if n == 1 else f"{info.call_sid}-{n}.wav")
    return names


def export_caller(
    engine: Engine,
    recordings: RecordingStore,
    business_id: int,
    phone: str,
    actor: str = "system",
) -> dict[str, Any]:
    """Everything stored about `phone` at `business_id`, JSON-able. Reading transcripts is
    audited (action `export_caller`)."""
    return _export(engine, recordings, business_id, phone, actor)[0]


def _export(
    engine: Engine, recordings: RecordingStore, business_id: int, phone: str, actor: str
) -> tuple[dict[str, Any], list[RecordingInfo]]:
    phone = caller_phone(phone)
    with session_factory(engine).begin() as s:
        business = existing_business(s, business_id)
        scope = caller_scope(s, business_id, phone)
        ids = scope.call_ids
        segments = s.scalars(
            select(TranscriptSegment)
            .where(TranscriptSegment.call_id.in_(ids))
            .order_by(TranscriptSegment.call_id, TranscriptSegment.seq)
        ).all()
        turns = s.scalars(
            select(Turn).where(Turn.call_id.in_(ids)).order_by(Turn.call_id, Turn.index)
        ).all()
        sid_of = {c.id: c.call_sid for c in scope.calls}
        bookings = s.scalars(select(Booking).where(scope.bookings()).order_by(Booking.id)).all()
        messages = s.scalars(select(Message).where(scope.messages()).order_by(Message.id)).all()
        handoffs = s.scalars(select(Handoff).where(scope.handoffs()).order_by(Handoff.id)).all()
        consent = s.scalars(
            select(ConsentRecord)
            .where(scope.consent())
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        ).all()
        sms = s.scalars(
            select(SmsMessage).where(scope.sms_to_caller()).order_by(SmsMessage.id)
        ).all()
        recs = recording_rows(s, recordings, scope.recordings(), business_id)
        infos = [info for info, _ in recs]

        data: dict[str, Any] = {
            "business": {"id": business.id, "name": business.name, "line": business.line},
            "phone": phone,
            "exported_at": datetime.now(UTC).isoformat(),
            "calls": [
                {
                    **call_summary(c),
                    "transcript": [segment_json(seg) for seg in segments if seg.call_id == c.id],
                    "turns": [turn_json(t) for t in turns if t.call_id == c.id],
                }
                for c in scope.calls
            ],
            "bookings": [
                {
                    "call_sid": sid_of.get(b.call_id) if b.call_id else None,
                    **booking_json(b),
                    "created_at": _iso(b.created_at),
                }
                for b in bookings
            ],
            "messages": [
                {
                    "call_sid": sid_of.get(m.call_id) if m.call_id else None,
                    **message_json(m),
                    "handled_at": _iso(m.handled_at),
                }
                for m in messages
            ],
            "handoffs": [  # the dispatcher's own number is theirs, not the caller's
                {
                    "call_sid": sid_of.get(h.call_id) if h.call_id else None,
                    "reason": h.reason,
                    "summary": h.summary,
                    "dispatcher": h.dispatcher_name,
                    "requested_at": _iso(h.requested_at),
                    "dialed_at": _iso(h.dialed_at),
                    "dial_status": h.dial_status,
                    "ended_at": _iso(h.ended_at),
                }
                for h in handoffs
            ],
            "consent_records": [
                {
                    "channel": r.channel,
                    "opt_in": r.opt_in,
                    "source": r.source,
                    "wording": r.wording,
                    "call_sid": r.call_sid,
                    "recorded_at": _iso(r.recorded_at),
                }
                for r in consent
            ],
            "sms_messages": [
                {
                    "call_sid": m.call_sid,
                    "to": m.to_number,
                    "purpose": m.purpose,
                    "body": m.body,
                    "status": m.status,
                    "twilio_sid": m.twilio_sid,
                    "error": m.error,
                    "created_at": _iso(m.created_at),
                }
                for m in sms
            ],
            "recordings": [
                {
                    "call_sid": info.call_sid,
                    "file": name,
                    "bytes": info.bytes,
                    "duration_s": info.duration_s,
                    "created_at": _iso(created_at),
                }
                for (info, created_at), name in zip(recs, _recording_files(infos), strict=True)
            ],
        }
        write_audit(
            s,
            business_id,
            actor,
            "export_caller",
            phone_ref(recordings.key, business_id, phone),
            {"calls": len(scope.calls), "recordings": len(infos)},
        )
    return data, infos


def write_export(
    engine: Engine,
    recordings: RecordingStore,
    business_id: int,
    phone: str,
    out: Path,
    actor: str = "system",
) -> dict[str, Any]:
    """The export as `out` (JSON) and the decrypted recordings as `<out>.recordings/*.wav`,
    all readable by the owner only. A recording that cannot be read is listed with its
    error instead of failing the whole export."""
    data, infos = _export(engine, recordings, business_id, phone, actor)
    wav_dir = out.with_name(out.name + ".recordings")
    if infos:
        wav_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry, info in zip(data["recordings"], infos, strict=True):
        target = wav_dir / entry["file"]
        try:
            _write_private(target, recordings.wav(info))
        except (RecordingError, OSError) as exc:
            target.unlink(missing_ok=True)
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["file"] = None
    _write_private(out, [json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n"])
    return data


def _write_private(path: Path, chunks: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
