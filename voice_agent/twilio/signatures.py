"""Twilio request signatures (twilio's RequestValidator) and the public URL they cover."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import URL
from twilio.request_validator import RequestValidator


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
