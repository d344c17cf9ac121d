"""Twilio's signed incoming-SMS webhook: the opt-out, opt-in and help keywords.

Point the number's messaging webhook at `POST {PUBLIC_BASE_URL}/twilio/sms`. Only keywords
are acted on (a consent record for STOP / START, an answer for HELP); any other text gets an
empty reply and is not stored: the service keeps only what it needs."""

from __future__ import annotations

import asyncio
import logging
import re

from fastapi import APIRouter, Response
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.messaging_response import MessagingResponse

from storage.profiles import BusinessProfile
from voice_agent.services import Services, ServicesDep
from voice_agent.twilio.signed_form import SignedForm

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio")

# Twilio's and the carriers' standard English keywords (CTIA): see keyword() for matching.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
# With Advanced Opt-Out, Twilio names the keyword class it matched (custom keywords too).
OPT_OUT_TYPES = {"STOP": "STOP", "START": "START", "HELP": "HELP"}

FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")
ONLY_PUNCTUATION = re.compile(r"[\s.!]*")
REPLY_PURPOSE = "keyword_reply"


def keyword(body: str, opt_out_type: str | None = None) -> str | None:
    """STOP, START, HELP or None, from the first word (any case, punctuation ignored).

    An opt-in must be the whole message ("Yes!", not "Yes I'll be home"): a reply to a
    question is not consent to texts, and a doubtful opt-out costs less than a doubtful
    opt-in."""
    if opt_out_type and opt_out_type.strip().upper() in OPT_OUT_TYPES:
        return OPT_OUT_TYPES[opt_out_type.strip().upper()]
    match = FIRST_WORD.match(body or "")
    word = match.group(1).upper() if match else ""
    if word in OPT_OUT:
        return "STOP"
    if word in OPT_IN and ONLY_PUNCTUATION.fullmatch(body[match.end() :] if match else ""):
        return "START"
    if word in HELP:
        return "HELP"
    return None


def help_text(business: BusinessProfile) -> str:
    return business.sms_help_text or (
        f"{business.name}: texts about your service calls and bookings. For help, call "
        f"{business.line}. Msg & data rates may apply. Reply STOP to opt out."
    )


def stop_text(business: BusinessProfile) -> str:
    return (
        f"{business.name}: you are unsubscribed and will get no more texts from us. "
        "Reply START to subscribe again."
    )


def start_text(business: BusinessProfile) -> str:
    return (
        f"{business.name}: you will get texts about your service calls again. "
        "Reply HELP for help, STOP to opt out."
    )


def _twiml(text: str | None = None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return Response(content=str(reply), media_type="application/xml")


def _act(services: Services, business: BusinessProfile, sender: str, word: str, body: str) -> str:
    """Record the consent change (if any) and log the reply; returns the reply's text."""
    if word == "HELP":
        text = help_text(business)
    else:
        opt_in = word == "START"
        # The wording is what the person sent: the proof of their opt-out or opt-in.
        services.consent.record(business.id, sender, opt_in, "sms_keyword", body.strip())
        text = start_text(business) if opt_in else stop_text(business)
    try:  # the consent record is what matters; a failed log must not cost the reply
        services.sms_log.log(business.id, sender, REPLY_PURPOSE, text, "sent")
    except SQLAlchemyError:
        log.exception("could not log the %s reply to business %s", word, business.id)
    return text


@router.post("/sms")
async def incoming_sms(services: ServicesDep, form: SignedForm) -> Response:
    sender, to, body = (
        form.get("From", "").strip(),
        form.get("To", "").strip(),
        form.get("Body", ""),
    )
    word = keyword(body, form.get("OptOutType"))
    if word is None:
        return _twiml()  # not a keyword: nothing to do, and nothing is kept
    if not sender:
        return Response("From is required", status_code=400)
    try:
        business = await asyncio.to_thread(services.businesses.by_line, to)
        if business is None:
            log.warning("SMS keyword %s to %s, a number no business owns", word, to)
            return _twiml()
        text = await asyncio.to_thread(_act, services, business, sender, word, body)
    except SQLAlchemyError:
        # An opt-out must never be lost silently: say who, so it can be recorded by hand.
        log.exception("SMS keyword %s from %s to %s could not be recorded", word, sender, to)
        return Response("database unavailable", status_code=503)
    log.info("SMS keyword %s for business %s", word, business.id)
    return _twiml(text)
