"""The incoming-SMS webhook over real HTTP: signed like Twilio, keywords change consent, and
the outbound sender (through the real twilio client, against a local fake) obeys it."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select, update

from storage.businesses import BusinessStore
from storage.consent import ConsentStore
from storage.db import make_engine, session_factory, upgrade
from storage.models import Business, Call, ConsentRecord, PhoneNumber, SmsMessage
from storage.sms_log import SmsLog
from tests.fake_twilio_api import FakeTwilio
from tests.servers import AppThread
from voice_agent.app import create_app
from voice_agent.notify.sms import SmsSender
from voice_agent.replay.peer import ring
from voice_agent.settings import Settings
from voice_agent.twilio import sms_webhook as twilio_sms
from voice_agent.twilio.signatures import SignatureChecker

LINE = "+15550100200"  # the demo business's line
OTHER_LINE, OTHER_EXTRA = "+15550100300", "+15550100301"
TOKEN = "sms-test-auth-token"


@dataclass
class SmsServer:
    url: str
    engine: Engine
    data: Path
    demo: int
    other: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsServer]:
    data = tmp_path_factory.mktemp("sms-server")
    settings = Settings(data_dir=data, twilio_auth_token=TOKEN)
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)  # the app's lifespan would; AppThread runs without one
    demo = BusinessStore(engine).list()[0]["id"]
    other = BusinessStore(engine).add("Quick Electric", OTHER_LINE, "UTC")
    with session_factory(engine).begin() as s:
        s.add(PhoneNumber(business_id=other, number=OTHER_EXTRA, label="ads"))
        s.execute(update(Business).where(Business.id == other).values(sms_help_text="Quick help."))
    thread = AppThread(create_app(settings))
    with thread as url:
        yield SmsServer(url, engine, data, demo, other)
    engine.dispose()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


def new_number() -> str:
    return "+1555" + str(secrets.randbelow(10**7)).zfill(7)


async def text(
    server: SmsServer, sender: str, body: str, to: str = LINE, token: str | None = TOKEN
) -> httpx.Response:
    url = f"{server.url}/twilio/sms"
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": to,
        "Body": body,
        "NumMedia": "0",
    }
    headers = {"X-Twilio-Signature": SignatureChecker(token).sign(url, params)} if token else {}
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=params, headers=headers)


def reply(response: httpx.Response) -> str | None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1 and len(root) == len(messages)
    return messages[0].text if messages else None


def consent_of(server: SmsServer, number: str) -> list[tuple[int, bool, str, str]]:
    with session_factory(server.engine)() as s:
        rows = s.scalars(
            select(ConsentRecord).where(ConsentRecord.phone == number).order_by(ConsentRecord.id)
        )
        return [(r.business_id, r.opt_in, r.source, r.wording) for r in rows]


def rows(server: SmsServer, model: type) -> int:
    with session_factory(server.engine)() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def sender_for(server: SmsServer, fake: FakeTwilio) -> SmsSender:
    return SmsSender(
        ConsentStore(server.engine),
        SmsLog(server.engine),
        fake.account_sid,
        fake.auth_token,
        fake.url,
    )


def sent_to(fake: FakeTwilio, number: str) -> int:
    return sum(1 for r in fake.received if r.form.get("To") == number and r.status == 201)


async def test_unsigned_or_wrongly_signed_is_forbidden(server: SmsServer) -> None:
    number = new_number()
    assert (await text(server, number, "STOP", token=None)).status_code == 403
    assert (await text(server, number, "STOP", token="not-the-token")).status_code == 403
    assert consent_of(server, number) == []


async def test_stop_then_start(server: SmsServer, fake: FakeTwilio) -> None:
    caller = new_number()
    ConsentStore(server.engine).record(server.demo, caller, True, "call", "Can we text you?")
    sender = sender_for(server, fake)
    first = await sender.send(server.demo, LINE, caller, "Booked.", "booking_confirmation")
    assert first.status == "sent" and sent_to(fake, caller) == 1

    answer = reply(await text(server, caller, "Stop"))
    assert answer is not None and "unsubscribed" in answer and "START" in answer
    assert consent_of(server, caller)[-1] == (server.demo, False, "sms_keyword", "Stop")
    with session_factory(server.engine)() as s:
        stop = s.scalars(select(ConsentRecord).where(ConsentRecord.phone == caller)).all()[-1]
        assert stop.recorded_at is not None

    refused = await sender.send(server.demo, LINE, caller, "Reminder.", "booking_confirmation")
    assert refused.status == "refused" and "opt-in" in (refused.error or "")
    assert sent_to(fake, caller) == 1  # no request reached Twilio

    answer = reply(await text(server, caller, "START"))
    assert answer is not None and "STOP" in answer
    assert consent_of(server, caller)[-1] == (server.demo, True, "sms_keyword", "START")
    again = await sender.send(server.demo, LINE, caller, "Reminder.", "booking_confirmation")
    assert again.status == "sent" and sent_to(fake, caller) == 2


@pytest.mark.parametrize(
    ("body", "opt_in"),
    [
        ("stop", False),
        ("  Stop please  ", False),
        ("STOPALL", False),
        ("unsubscribe", False),
        ("Cancel.", False),
        ("end", False),
        ("QUIT", False),
        ("yes", True),
        ("Unstop", True),
        ("start!", True),
    ],
)
async def test_keywords(server: SmsServer, body: str, opt_in: bool) -> None:
    caller = new_number()
    assert reply(await text(server, caller, body)) is not None
    assert consent_of(server, caller) == [(server.demo, opt_in, "sms_keyword", body.strip())]


async def test_help_answers_with_the_default_or_the_business_text(server: SmsServer) -> None:
    caller = new_number()
    answer = reply(await text(server, caller, "help"))
    assert answer is not None
    assert "Bluebird Plumbing" in answer and "Reply STOP to opt out" in answer
    assert reply(await text(server, caller, "HELP me", to=OTHER_LINE)) == "Quick help."
    assert consent_of(server, caller) == []  # HELP changes nothing
    with session_factory(server.engine)() as s:
        logged = s.scalars(select(SmsMessage.purpose).where(SmsMessage.to_number == caller)).all()
    assert logged == ["keyword_reply", "keyword_reply"]


async def test_other_texts_get_an_empty_reply_and_are_not_kept(server: SmsServer) -> None:
    caller = new_number()
    before = (rows(server, ConsentRecord), rows(server, SmsMessage))
    secret = "Stopping by at 5 Juniper Close, gate code 4471"
    assert reply(await text(server, caller, secret)) is None
    assert reply(await text(server, caller, "")) is None
    assert (rows(server, ConsentRecord), rows(server, SmsMessage)) == before
    stored = b"".join(p.read_bytes() for p in server.data.glob("voice-agent.db*"))
    assert b"Juniper" not in stored and caller.encode() not in stored


async def test_a_text_to_a_number_nobody_owns_records_nothing(server: SmsServer) -> None:
    caller = new_number()
    assert reply(await text(server, caller, "STOP", to="+15559999999")) is None
    assert consent_of(server, caller) == []


async def test_consent_goes_to_the_business_that_owns_the_number(server: SmsServer) -> None:
    caller = new_number()
    ConsentStore(server.engine).record(server.demo, caller, True, "call", "Can we text you?")
    reply(await text(server, caller, "STOP", to=OTHER_EXTRA))  # another number of `other`
    assert consent_of(server, caller)[-1] == (server.other, False, "sms_keyword", "STOP")
    consent = ConsentStore(server.engine)
    assert consent.has_opt_in(server.demo, caller) and not consent.has_opt_in(server.other, caller)


async def test_a_call_to_an_extra_number_is_answered_as_its_business(server: SmsServer) -> None:
    """Calls and texts find the business the same way: a number it texts from answers calls."""
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, SignatureChecker(TOKEN), server.url, new_number(), OTHER_EXTRA)
    assert ringing.stream_url is not None and ringing.token, ringing.twiml
    with session_factory(server.engine)() as s:
        call = s.scalar(select(Call).where(Call.call_sid == ringing.call_sid))
    assert call is not None and call.business_id == server.other and call.to_number == OTHER_EXTRA


def test_keyword_parsing() -> None:
    assert twilio_sms.keyword("  sToP now") == "STOP"
    assert twilio_sms.keyword("stopped") is None
    assert twilio_sms.keyword("123 stop") is None
    assert twilio_sms.keyword("ALTO", opt_out_type="STOP") == "STOP"  # Advanced Opt-Out
    assert twilio_sms.keyword("info") == "HELP"
    assert twilio_sms.keyword(" Yes! ") == "START"
    assert twilio_sms.keyword("yes I'll be home at 5") is None  # an answer, not consent
    assert twilio_sms.keyword("start texting me again") is None


async def test_an_answer_starting_with_yes_is_not_an_opt_in(server: SmsServer) -> None:
    caller = new_number()
    assert reply(await text(server, caller, "Yes, see you Tuesday")) is None
    assert consent_of(server, caller) == []
