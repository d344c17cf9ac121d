"""Nothing unsigned gets in: webhooks, the stream handshake, and the one-time token."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
import websockets
from starlette.datastructures import URL

from tests.conftest import RunningServer
from voice_agent.replay.caller import wait_for_answer
from voice_agent.replay.peer import connect_stream, ring
from voice_agent.twilio.signatures import SignatureChecker, public_url

PARAMS = {
    "CallSid": "CAsig0001",
    "From": "+15555550100",
    "To": "+15550100200",
    "AccountSid": "AC" + "0" * 32,
    "CallStatus": "ringing",
}


async def test_webhook_without_or_with_wrong_signature_is_forbidden(server: RunningServer) -> None:
    url = f"{server.url}/twilio/voice"
    wrong = SignatureChecker("not-the-token").sign(url, PARAMS)
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, data=PARAMS)).status_code == 403
        response = await http.post(url, data=PARAMS, headers={"X-Twilio-Signature": wrong})
        assert response.status_code == 403
        tampered = {**PARAMS, "From": "+15555550999"}
        good_for_other = SignatureChecker(server.auth_token).sign(url, PARAMS)
        response = await http.post(
            url, data=tampered, headers={"X-Twilio-Signature": good_for_other}
        )
        assert response.status_code == 403


@pytest.mark.parametrize(
    "path", ["/twilio/voice", "/twilio/stream-ended", "/twilio/dial-ended", "/twilio/sms"]
)
async def test_every_webhook_refuses_an_unsigned_post(server: RunningServer, path: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}{path}", data=PARAMS)
    assert (response.status_code, response.text) == (403, "invalid signature")


async def test_signed_webhook_connects_a_stream_with_a_one_time_token(
    server: RunningServer,
) -> None:
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550100", "+15550100200")
    root = ET.fromstring(ringing.twiml)
    connect = root.find("Connect")
    assert connect is not None and connect.get("action") == f"{server.url}/twilio/stream-ended"
    port = server.url.rsplit(":", 1)[1]
    assert ringing.stream_url == f"ws://127.0.0.1:{port}/twilio/media-stream"
    assert len(ringing.token) >= 24


async def test_unknown_number_gets_a_polite_refusal(server: RunningServer) -> None:
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550100", "+15559999999")
    root = ET.fromstring(ringing.twiml)
    assert ringing.stream_url is None
    assert "not connected" in root.findtext("Say", "") and root.find("Hangup") is not None


async def test_stream_handshake_needs_a_valid_signature(server: RunningServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    url = f"ws://127.0.0.1:{port}/twilio/media-stream"
    for headers in ({}, {"X-Twilio-Signature": SignatureChecker("wrong").sign(url, {})}):
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(url, additional_headers=headers):
                pass
        assert err.value.response.status_code == 403


async def test_stream_token_is_bound_to_its_call_and_works_once(server: RunningServer) -> None:
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        first = await ring(http, signer, server.url, "+15555550100", "+15550100200")
        second = await ring(http, signer, server.url, "+15555550101", "+15550100200")
    # A token issued for another call is refused.
    second.token = first.token
    async with connect_stream(second, signer, fast=True) as peer:
        await peer.closed.wait()
    assert peer.close_code == 1008 and not peer.agent_frames
    # Presenting a token spends it, even when refused: a leaked token is good for nothing.
    async with connect_stream(first, signer, fast=True) as peer:
        await peer.closed.wait()
    assert peer.close_code == 1008


async def test_a_start_without_custom_parameters_is_refused(server: RunningServer) -> None:
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550100", "+15550100200")
    ringing.token = ""
    async with connect_stream(ringing, signer, fast=True) as peer:
        await peer.closed.wait()
    assert peer.close_code == 1008


async def test_stream_ended_needs_a_signature_and_hangs_up(server: RunningServer) -> None:
    url = f"{server.url}/twilio/stream-ended"
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, data=PARAMS)).status_code == 403
        ok = await http.post(
            url, data=PARAMS, headers={"X-Twilio-Signature": signer.sign(url, PARAMS)}
        )
    assert ok.status_code == 200 and "<Hangup" in ok.text


async def test_a_good_token_opens_the_stream_and_the_agent_speaks(server: RunningServer) -> None:
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550100", "+15550100200")
    async with connect_stream(ringing, signer, fast=True) as peer:
        assert await wait_for_answer(peer, 30)
    assert len(peer.agent_frames) > 50
    assert all(len(f) == 160 for f in peer.agent_frames)
    marks = [m["mark"]["name"] for m in peer.received if m["event"] == "mark"]
    assert marks and marks[-1].endswith(".end")
    assert all(m["streamSid"] == peer.stream_sid for m in peer.received)


def test_public_url_is_rebuilt_behind_a_proxy() -> None:
    inside = URL("http://10.0.0.5:8000/twilio/voice?x=1")
    assert (
        public_url(inside, "https://agent.example.com")
        == "https://agent.example.com/twilio/voice?x=1"
    )
    ws = URL("ws://10.0.0.5:8000/twilio/media-stream")
    assert (
        public_url(ws, "https://agent.example.com/")
        == "wss://agent.example.com/twilio/media-stream"
    )
    assert public_url(inside, None) == str(inside)
