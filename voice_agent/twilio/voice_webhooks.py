"""Twilio's signed HTTP webhooks: the incoming call, the end of its media stream, and the
end of a <Dial> to the dispatcher."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from voice_agent.services import Services, ServicesDep
from voice_agent.twilio.line_state import TwilioDep
from voice_agent.twilio.signatures import stream_url
from voice_agent.twilio.signed_form import SignedForm

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio")

TOO_MANY = "We have received many calls from this number. Please try again later. Goodbye."
UNAVAILABLE = "Sorry, we cannot take your call right now. Please call again in a few minutes."
UNKNOWN_LINE = (
    "Sorry, this number is not connected to an answering service. Please check the number "
    "and call again. Goodbye."
)


def _twiml(response: VoiceResponse) -> Response:
    return Response(content=str(response), media_type="application/xml")


def _base(request: Request, services: Services) -> str:
    return (services.settings.public_base_url or str(request.base_url)).rstrip("/")


async def _connect_stream(
    request: Request, services: Services, call_sid: str, **parameters: str
) -> VoiceResponse:
    base = _base(request, services)
    token = await services.live.tokens.issue(call_sid)
    reply = VoiceResponse()
    connect = reply.connect(action=f"{base}/twilio/stream-ended")
    stream = connect.stream(url=f"{stream_url(base)}/twilio/media-stream")
    stream.parameter(name="token", value=token)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    return reply


@router.post("/voice")
async def incoming_call(request: Request, services: ServicesDep, form: SignedForm) -> Response:
    call_sid, to, caller = form.get("CallSid", ""), form.get("To", ""), form.get("From", "")
    if not call_sid:
        return Response("CallSid is required", status_code=400)
    reply = VoiceResponse()
    if caller and not await services.live.limiter.allow(caller):
        log.warning("call %s refused: too many calls from this caller", call_sid)
        reply.say(TOO_MANY)
        reply.hangup()
        return _twiml(reply)
    try:
        business = await asyncio.to_thread(services.businesses.by_line, to)
        if business is not None:
            await asyncio.to_thread(services.calls.open_call, call_sid, business.id, caller, to)
    except (SQLAlchemyError, ValueError) as exc:
        # Without a record we could not keep our promises about the call: say so politely.
        log.error("call %s: not recorded (%s)", call_sid, type(exc).__name__)
        reply.say(UNAVAILABLE)
        reply.hangup()
        return _twiml(reply)
    if business is None:
        log.warning("call %s to a number no business owns", call_sid)
        reply.say(UNKNOWN_LINE)
        reply.hangup()
        return _twiml(reply)
    return _twiml(await _connect_stream(request, services, call_sid))


@router.post("/stream-ended")
async def stream_ended(
    request: Request, services: ServicesDep, twilio: TwilioDep, form: SignedForm
) -> Response:
    """After the agent's stream: <Dial> the dispatcher if the agent handed off, else hang up."""
    reply = VoiceResponse()
    call_sid = form.get("CallSid", "")
    try:
        handoff = await asyncio.to_thread(services.reception.handoff_for_call, call_sid)
        if handoff is None or handoff.dialed_at is not None or not handoff.dispatcher_phone:
            reply.hangup()
            return _twiml(reply)
        business = await asyncio.to_thread(services.businesses.by_id, handoff.business_id)
        await asyncio.to_thread(
            services.reception.update_handoff, handoff.id, dialed_at=datetime.now(UTC)
        )
        line, phone = (business.line if business else None), handoff.dispatcher_phone
    except SQLAlchemyError as exc:
        # Twilio must get TwiML, not a 500. A handoff this worker made still goes through.
        log.error("call %s: database unavailable after the stream (%s)", call_sid, exc)
        known = twilio.transfers.dial_for(call_sid)
        if known is None:
            reply.say(UNAVAILABLE)
            reply.hangup()
            return _twiml(reply)
        line, phone = known
    dial = reply.dial(
        caller_id=line,
        timeout=services.settings.dispatcher_ring_s,
        action=f"{_base(request, services)}/twilio/dial-ended",
        answer_on_bridge=True,
    )
    dial.number(phone)
    return _twiml(reply)


@router.post("/dial-ended")
async def dial_ended(request: Request, services: ServicesDep, form: SignedForm) -> Response:
    """The dispatcher call is over. Nobody answered: back to the agent to take a message."""
    call_sid, status = form.get("CallSid", ""), form.get("DialCallStatus", "")
    handoff = business = None
    try:
        handoff = await asyncio.to_thread(services.reception.handoff_for_call, call_sid)
        if handoff is not None:
            await asyncio.to_thread(
                services.reception.update_handoff,
                handoff.id,
                dial_status=status,
                ended_at=datetime.now(UTC),
            )
            business = await asyncio.to_thread(services.businesses.by_id, handoff.business_id)
    except SQLAlchemyError as exc:  # the dial's result is lost; the caller is not
        log.error("call %s: database unavailable after the dial (%s)", call_sid, exc)
    if status in ("completed", "answered"):
        if business:
            services.notifier.publish(
                business, "call.completed", {"call_sid": call_sid, "outcome": "handed_off"}
            )
        reply = VoiceResponse()
        reply.hangup()
        return _twiml(reply)
    log.info("call %s: dispatcher did not answer (%s); taking a message", call_sid, status)
    return _twiml(await _connect_stream(request, services, call_sid, mode="message"))
