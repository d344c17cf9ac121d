"""A local stand-in for Twilio's Messages REST API (2010-04-01), wire-compatible with what
the `twilio` library sends and parses: form-encoded create, HTTP Basic auth with the account
SID and auth token, Twilio's JSON message resource and its JSON error shape."""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.servers import AppThread

API = "/2010-04-01"


@dataclass
class Received:
    account_sid: str  # from the path
    username: str | None  # from Basic auth
    form: dict[str, str]
    status: int  # what the fake answered


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _basic_auth(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


class FakeTwilio:
    def __init__(self) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.received: list[Received] = []
        self._rejections: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post(API + "/Accounts/{account_sid}/Messages.json")(self._create_message)
        self._thread = AppThread(self.app)
        self.url = self._thread.url

    def reject(self, to: str, status: int = 400, code: int = 21211, message: str = "") -> None:
        """Answer sends to this number with an error (default: 21211, invalid 'To')."""
        text = message or f"The 'To' number {to} is not a valid phone number."
        self._rejections[to] = (status, code, text)

    def __enter__(self) -> FakeTwilio:
        self._thread.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.__exit__(*exc)

    async def _create_message(self, account_sid: str, request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        auth = _basic_auth(request)
        response = self._answer(account_sid, auth, form)
        with self._lock:
            self.received.append(
                Received(account_sid, auth[0] if auth else None, form, response.status_code)
            )
        return response

    def _answer(
        self, account_sid: str, auth: tuple[str, str] | None, form: dict[str, str]
    ) -> JSONResponse:
        if auth != (self.account_sid, self.auth_token):
            return twilio_error(401, 20003, "Authenticate")
        if account_sid != self.account_sid:
            return twilio_error(
                404, 20404, f"The requested resource {API}/Accounts/{account_sid} was not found"
            )
        to, from_, body = form.get("To"), form.get("From"), form.get("Body")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not form.get("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body and not form.get("MediaUrl"):
            return twilio_error(400, 21602, "Message body is required.")
        if to in self._rejections:
            return twilio_error(*self._rejections[to])
        return JSONResponse(self._resource(to, from_, body), status_code=201)

    def _resource(self, to: str, from_: str | None, body: str | None) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC))  # RFC 2822, as Twilio sends it
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
