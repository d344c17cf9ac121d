"""Twilio's signed HTTP webhooks: the incoming call and the end of its media stream."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from voice_agent.services import Services
from voice_agent.twilio_auth import public_url, stream_url

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio")

UNAVAILABLE = "Sorry, we cannot take your call right now. Please call again in a few minutes."
UNKNOWN_LINE = (
    "Sorry, this number is not connected to an answering service. Please check the number "
    "and call again. Goodbye."
)


def _twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


async def _signed_form(request: Request) -> dict[str, str] | None:
    services: Services = request.app.state.services
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = public_url(request.url, services.settings.public_base_url)
    if services.signatures.valid(url, form, request.headers.get("x-twilio-signature")):
        return form
    log.warning("rejected %s: invalid X-Twilio-Signature for %s", request.url.path, url)
    return None


def _base_url(request: Request, services: Services) -> str:
    return services.settings.public_base_url or str(request.base_url)


@router.post("/voice")
async def incoming_call(request: Request) -> Response:
    services: Services = request.app.state.services
    form = await _signed_form(request)
    if form is None:
        return Response("invalid signature", status_code=403)
    call_sid, to, caller = form.get("CallSid", ""), form.get("To", ""), form.get("From", "")
    if not call_sid:
        return Response("CallSid is required", status_code=400)
    reply = VoiceResponse()
    try:
        business = await asyncio.to_thread(services.calls.business_by_line, to)
        if business is not None:
            await asyncio.to_thread(services.calls.open_call, call_sid, business.id, caller, to)
    except SQLAlchemyError:
        # Without a record we could not keep our promises about the call: say so politely.
        log.exception("call %s: database unavailable", call_sid)
        reply.say(UNAVAILABLE)
        reply.hangup()
        return _twiml(reply)
    if business is None:
        log.warning("call %s to a number no business owns", call_sid)
        reply.say(UNKNOWN_LINE)
        reply.hangup()
        return _twiml(reply)
    base = _base_url(request, services).rstrip("/")
    connect = reply.connect(action=f"{base}/twilio/stream-ended")
    stream = connect.stream(url=f"{stream_url(base)}/twilio/media-stream")
    stream.parameter(name="token", value=services.tokens.issue(call_sid))
    return _twiml(reply)


@router.post("/stream-ended")
async def stream_ended(request: Request) -> Response:
    if await _signed_form(request) is None:
        return Response("invalid signature", status_code=403)
    reply = VoiceResponse()
    reply.hangup()
    return _twiml(reply)
