"""The receptionist over the wire: a real server, real calls from audio, the twilio package
talking to a local stand-in for Twilio's REST API, and a CRM receiver checking signatures.

What is checked here follows from the caller's exact words (the address in the SMS, the
name on the message), so the server hears them word for word from the scripted transcriber
(tests/scripted.py) in Whisper's place; test_calls_e2e places the calls through Whisper."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage.webhook_store import WebhookStore
from tests.conftest import AUDIO, MANIFEST, RunningServer, wait_stored
from tests.fake_twilio_api import FakeTwilio
from tests.scripted import scripted_server
from tests.test_calls_e2e import heard_turns
from tests.test_crm_webhooks import Receiver, wait_until
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import caller_turn, wait_for_answer
from voice_agent.replay.calls import place_call
from voice_agent.replay.peer import connect_stream, parse_connect, post_signed
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker

CALLS = {c["name"]: [AUDIO / t for t in c["turns"]] for c in MANIFEST["calls"]}
CALLER, DISPATCHER = "+15555550123", "+15550100299"


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def crm() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def agent(tmp_path_factory, twilio_api: FakeTwilio, crm: Receiver) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    data: Path = tmp_path_factory.mktemp("agent")
    settings = Settings(
        data_dir=data, twilio_auth_token=twilio_api.auth_token,
        twilio_account_sid=twilio_api.account_sid, twilio_api_base_url=twilio_api.url,
        silence_prompt_ms=60_000,
    )  # fmt: skip
    with scripted_server(settings) as server:
        _, secret = WebhookStore(server.services.db).add_endpoint(1, crm.url("crm"), [])
        crm.secrets["crm"] = secret
        yield server


def crm_events(crm: Receiver, call_sid: str) -> list[str]:
    return [
        h.payload["type"] for h in crm.of("crm") if h.payload["data"].get("call_sid") == call_sid
    ]


def sms_to(twilio_api: FakeTwilio, number: str) -> list[str]:
    return [r.form["Body"] for r in twilio_api.received if r.form.get("To") == number]


async def test_booking_call_texts_the_caller_who_said_yes_and_tells_the_crm(
    agent: RunningServer, twilio_api: FakeTwilio, crm: Receiver
) -> None:
    result = await place_call(agent.url, agent.auth_token, CALLS["clogged-sink-booking"], fast=True)
    call = await wait_stored(agent, result.call_sid)
    assert call["outcome"] == "booked" and call["booking"]["address"] == "1180 Birch Avenue"
    await wait_until(lambda: sms_to(twilio_api, CALLER), "the confirmation SMS")
    [body] = sms_to(twilio_api, CALLER)
    assert "1180 Birch Avenue" in body and "STOP" in body
    assert twilio_api.received[-1].form["From"] == "+15550100200"
    await wait_until(lambda: "call.completed" in crm_events(crm, result.call_sid), "webhooks")
    assert crm_events(crm, result.call_sid) == ["booking.created", "call.completed"]
    assert all(h.verified for h in crm.of("crm"))


async def test_booking_without_consent_sends_no_sms(
    agent: RunningServer, twilio_api: FakeTwilio
) -> None:
    before = len(twilio_api.received)
    turns = CALLS["water-heater-booking"]  # says goodbye instead of answering the SMS question
    result = await place_call(agent.url, agent.auth_token, turns, fast=True, caller="+15555550177")
    call = await wait_stored(agent, result.call_sid)
    assert call["outcome"] == "booked"
    assert sms_to(twilio_api, "+15555550177") == [] and len(twilio_api.received) == before


async def test_emergency_is_dialed_and_an_unanswered_dial_ends_in_a_message(
    agent: RunningServer, twilio_api: FakeTwilio, crm: Receiver
) -> None:
    result = await place_call(agent.url, agent.auth_token, CALLS["gas-smell"], fast=True)
    assert result.closed_by_agent and [t.file for t in heard_turns(result)] == ["gas-smell.wav"]
    assert f"<Number>{DISPATCHER}</Number>" in result.after_stream_twiml
    await wait_until(lambda: sms_to(twilio_api, DISPATCHER), "the dispatcher alert")
    assert "gas smell" in sms_to(twilio_api, DISPATCHER)[-1]
    await wait_until(lambda: "call.handed_off" in crm_events(crm, result.call_sid), "handoff hook")

    # The dispatcher does not pick up: Twilio reports the <Dial> and follows the answer.
    signer = SignatureChecker(agent.auth_token)
    params = {"CallSid": result.call_sid, "From": CALLER, "To": "+15550100200",
              "DialCallStatus": "no-answer"}  # fmt: skip
    async with httpx.AsyncClient() as http:
        twiml = await post_signed(http, signer, f"{agent.url}/twilio/dial-ended", params)
        ringing = parse_connect(result.call_sid, params, twiml)
        assert ringing.parameters.get("mode") == "message"
        async with connect_stream(ringing, signer, fast=True) as peer:
            assert await wait_for_answer(peer, 30)
            for name in ("name-james.wav", "yes-correct.wav", "callback-evening.wav"):
                await caller_turn(peer, name, load_turn(AUDIO / name), 30)
        again = await post_signed(http, signer, ringing.action or "", params)
    assert "<Dial" not in again, "the dispatcher is dialed once"
    call = await wait_stored(agent, result.call_sid)
    assert call["outcome"] == "message_taken"
    assert call["handoff"]["dial_status"] == "no-answer"
    assert call["message"]["name"] == "James Carter"
    assert call["message"]["callback_number"] == CALLER
    assert "six" in call["message"]["best_time"].lower() or "6" in call["message"]["best_time"]
    agent_lines = [s["text"] for s in call["transcript"] if s["speaker"] == "agent"]
    assert any("couldn't pick up" in line for line in agent_lines)
