"""Consent to be contacted (SMS): an append-only record, so the proof of every opt-in and
opt-out survives. The newest record for a business + number + channel is what counts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from storage.db import session_factory
from storage.fields import caller_id
from storage.models import ConsentRecord


class ConsentStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def record(
        self,
        business_id: int,
        phone: str,
        opt_in: bool,
        source: str,  # call | sms_keyword | admin
        wording: str,  # what the person was asked, or what they sent (e.g. "STOP")
        call_sid: str | None = None,
        channel: str = "sms",
    ) -> None:
        with self._sessions.begin() as s:
            s.add(
                ConsentRecord(
                    business_id=business_id,
                    phone=caller_id(phone),
                    channel=channel,
                    opt_in=opt_in,
                    source=source,
                    wording=wording,
                    call_sid=call_sid,
                    recorded_at=datetime.now(UTC),
                )
            )

    def has_opt_in(self, business_id: int, phone: str, channel: str = "sms") -> bool:
        """True only if the newest record is an opt-in: no record means no consent."""
        with self._sessions() as s:
            latest = s.scalar(
                select(ConsentRecord.opt_in)
                .where(
                    ConsentRecord.business_id == business_id,
                    ConsentRecord.phone == caller_id(phone),
                    ConsentRecord.channel == channel,
                )
                # id breaks ties between records written within the same clock tick
                .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
                .limit(1)
            )
            return bool(latest)
