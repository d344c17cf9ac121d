"""SMS through the real twilio client, against a local server speaking Twilio's wire format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from twilio.http.http_client import TwilioHttpClient

from storage.businesses import BusinessStore
from storage.consent import ConsentStore
from storage.db import make_engine, upgrade
from storage.sms_log import SmsLog
from tests.fake_twilio_api import FakeTwilio
from tests.servers import free_port
from voice_agent.notify.sms import PLACEHOLDER_ACCOUNT_SID, RebasedHttpClient, SmsSender

LINE = "+15550100200"
CALLER = "+15555550123"
ASKED = "Can we text you a confirmation of this booking?"


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    return engine


@pytest.fixture
def business(engine: Engine) -> int:
    return BusinessStore(engine).list()[0]["id"]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def consent(engine: Engine) -> ConsentStore:
    return ConsentStore(engine)


def sender_for(engine: Engine, fake: FakeTwilio, **overrides: str | None) -> SmsSender:
    args: dict[str, str | None] = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "api_base_url": fake.url,
    }
    args.update(overrides)
    return SmsSender(ConsentStore(engine), SmsLog(engine), **args)  # type: ignore[arg-type]


async def test_opted_in_number_gets_the_sms(engine, business, fake, consent) -> None:
    consent.record(business, CALLER, True, "call", ASKED, call_sid="CA1")
    result = await sender_for(engine, fake).send(
        business, LINE, CALLER, "Booked: Tue 9-11am.", "booking_confirmation", call_sid="CA1"
    )
    assert result.status == "sent" and result.error is None
    assert result.sid is not None and result.sid.startswith("SM") and len(result.sid) == 34
    [got] = fake.received
    assert got.status == 201
    assert got.account_sid == got.username == fake.account_sid
    assert got.form == {"To": CALLER, "From": LINE, "Body": "Booked: Tue 9-11am."}
    [row] = SmsLog(engine).recent(business)
    assert row["status"] == "sent" and row["twilio_sid"] == result.sid
    assert row["call_sid"] == "CA1" and row["purpose"] == "booking_confirmation"


@pytest.mark.parametrize("history", [[], [True, False], [False]])
async def test_without_a_standing_opt_in_nothing_is_sent(
    engine, business, fake, consent, history
) -> None:
    for opt_in in history:
        consent.record(business, CALLER, opt_in, "call", ASKED)
    result = await sender_for(engine, fake).send(
        business, LINE, CALLER, "hi", "booking_confirmation"
    )
    assert result.status == "refused" and result.sid is None
    assert fake.received == []
    [row] = SmsLog(engine).recent(business)
    assert row["status"] == "refused" and "opt-in" in row["error"]


async def test_consent_is_per_business_and_the_newest_record_counts(
    engine, business, fake, consent
) -> None:
    other = BusinessStore(engine).add("Other Plumbing", "+15550100999", "UTC")
    consent.record(other, CALLER, True, "call", ASKED)
    assert not consent.has_opt_in(business, CALLER)
    consent.record(business, CALLER, False, "sms_keyword", "STOP")
    consent.record(business, CALLER, True, "sms_keyword", "START")
    assert consent.has_opt_in(business, CALLER)
    assert not consent.has_opt_in(business, CALLER, channel="email")
    result = await sender_for(engine, fake).send(
        business, LINE, CALLER, "hi", "booking_confirmation"
    )
    assert result.status == "sent"


async def test_twilio_error_is_logged_failed_and_not_raised(
    engine, business, fake, consent
) -> None:
    bad = "+1555"
    consent.record(business, bad, True, "admin", ASKED)
    fake.reject(bad)  # 400, 21211 invalid 'To'
    result = await sender_for(engine, fake).send(business, LINE, bad, "hi", "dispatcher_alert")
    assert result.status == "failed" and result.sid is None
    assert "21211" in result.error and "not a valid phone number" in result.error
    assert [r.status for r in fake.received] == [400]
    [row] = SmsLog(engine).recent(business)
    assert row["status"] == "failed" and "21211" in row["error"]


async def test_wrong_credentials_fail_with_twilio_401(engine, business, fake, consent) -> None:
    consent.record(business, CALLER, True, "call", ASKED)
    sender = sender_for(engine, fake, auth_token="not-the-token")
    result = await sender.send(business, LINE, CALLER, "hi", "booking_confirmation")
    assert result.status == "failed" and "20003" in result.error and "401" in result.error
    assert [r.status for r in fake.received] == [401]


async def test_unreachable_api_is_logged_failed(engine, business, consent) -> None:
    consent.record(business, CALLER, True, "call", ASKED)
    sender = SmsSender(
        ConsentStore(engine),
        SmsLog(engine),
        "AC" + "1" * 32,
        "token",
        f"http://127.0.0.1:{free_port()}",  # nothing listens there
    )
    result = await sender.send(business, LINE, CALLER, "hi", "booking_confirmation")
    assert result.status == "failed" and "ConnectionError" in result.error
    assert SmsLog(engine).recent(business)[0]["status"] == "failed"


@pytest.mark.parametrize(
    ("account_sid", "auth_token"),
    [(PLACEHOLDER_ACCOUNT_SID, None), (PLACEHOLDER_ACCOUNT_SID, "tok"), ("AC" + "1" * 32, None)],
)
async def test_without_real_credentials_sms_is_disabled(
    engine, business, consent, monkeypatch, account_sid, auth_token
) -> None:
    # The library would fall back to these; the sender must not.
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "2" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-the-environment")
    consent.record(business, CALLER, True, "call", ASKED)
    sender = SmsSender(ConsentStore(engine), SmsLog(engine), account_sid, auth_token, None)
    assert not sender.enabled
    result = await sender.send(business, LINE, CALLER, "hi", "booking_confirmation")
    assert result.status == "failed" and "SMS disabled" in result.error
    assert SmsLog(engine).recent(business)[0]["error"] == result.error


async def test_twilio_region_and_edge_still_reach_the_override(
    engine, business, fake, consent, monkeypatch
) -> None:
    # The client turns api.twilio.com into api.sydney.au1.twilio.com; the rebase runs after.
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    consent.record(business, CALLER, True, "call", ASKED)
    result = await sender_for(engine, fake).send(
        business, LINE, CALLER, "hi", "booking_confirmation"
    )
    assert result.status == "sent" and len(fake.received) == 1


def test_rebase_rewrites_only_twilio_hosts() -> None:
    http = RebasedHttpClient("http://127.0.0.1:9999/twilio/")
    path = "/2010-04-01/Accounts/AC1/Messages.json"
    assert http.rebase(f"https://api.twilio.com{path}") == f"http://127.0.0.1:9999/twilio{path}"
    assert http.rebase(f"https://api.sydney.au1.twilio.com{path}?a=1").endswith(f"{path}?a=1")
    assert http.rebase(f"https://api.twilio.com.evil.example{path}").startswith("https://api.")
    assert http.rebase("https://example.com/x") == "https://example.com/x"


def test_production_path_uses_the_library_client_unchanged(engine) -> None:
    sender = SmsSender(ConsentStore(engine), SmsLog(engine), "AC" + "1" * 32, "tok", None)
    assert sender.enabled
    assert type(sender._client.http_client) is TwilioHttpClient  # type: ignore[union-attr]
