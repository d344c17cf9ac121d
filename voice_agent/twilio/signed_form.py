"""`SignedForm`: the one check every Twilio HTTP webhook makes before it reads a field."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response

from voice_agent.services import ServicesDep
from voice_agent.twilio.line_state import TwilioDep
from voice_agent.twilio.signatures import public_url

log = logging.getLogger(__name__)


class InvalidSignature(HTTPException):
    """A webhook without a valid X-Twilio-Signature: 403 (see `refuse`)."""

    def __init__(self) -> None:
        super().__init__(403, "invalid signature")


async def refuse(_request: Request, _exc: Exception) -> Response:
    """The answer to an InvalidSignature (installed by create_app): a plain-text 403."""
    return Response("invalid signature", status_code=403)


async def signed_form(request: Request, services: ServicesDep, twilio: TwilioDep) -> dict[str, str]:
    """The POSTed form, if X-Twilio-Signature signs it for the URL Twilio called; else
    InvalidSignature."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = public_url(request.url, services.settings.public_base_url)
    if not twilio.signatures.valid(url, form, request.headers.get("x-twilio-signature")):
        log.warning("rejected %s: invalid X-Twilio-Signature for %s", request.url.path, url)
        raise InvalidSignature
    return form


SignedForm = Annotated[dict[str, str], Depends(signed_form)]
