"""Twilio request signatures (twilio's RequestValidator), the public URL they cover, and
`SignedForm`: the one check every Twilio HTTP webhook makes before it reads a field."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Response
from starlette.datastructures import URL
from twilio.request_validator import RequestValidator

if TYPE_CHECKING:
    from voice_agent.services import Services

log = logging.getLogger(__name__)


def public_url(url: URL, public_base_url: str | None) -> str:
    """The URL Twilio signed. Behind a proxy the request URL differs, so rebuild it from
    PUBLIC_BASE_URL; WebSocket URLs take the matching ws/wss scheme."""
    if not public_base_url:
        return str(url)
    base = public_base_url.rstrip("/")
    if url.scheme in ("ws", "wss"):
        base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    query = f"?{url.query}" if url.query else ""
    return f"{base}{url.path}{query}"


def stream_url(http_base: str) -> str:
    base = http_base.rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


class SignatureChecker:
    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def valid(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        return bool(signature) and self._validator.validate(url, dict(params), signature)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        return self._validator.compute_signature(url, dict(params))


class InvalidSignature(HTTPException):
    """A webhook without a valid X-Twilio-Signature: 403 (see `refuse`)."""

    def __init__(self) -> None:
        super().__init__(403, "invalid signature")


async def refuse(_request: Request, _exc: Exception) -> Response:
    """The answer to an InvalidSignature (installed by create_app): a plain-text 403."""
    return Response("invalid signature", status_code=403)


async def signed_form(request: Request) -> dict[str, str]:
    """The POSTed form, if X-Twilio-Signature signs it for the URL Twilio called; else
    InvalidSignature. (app.state.services is read here, not through voice_agent.api.deps:
    voice_agent.services imports this module.)"""
    services: Services = request.app.state.services
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = public_url(request.url, services.settings.public_base_url)
    if not services.signatures.valid(url, form, request.headers.get("x-twilio-signature")):
        log.warning("rejected %s: invalid X-Twilio-Signature for %s", request.url.path, url)
        raise InvalidSignature
    return form


SignedForm = Annotated[dict[str, str], Depends(signed_form)]
