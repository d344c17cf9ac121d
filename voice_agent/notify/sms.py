"""Outbound SMS through Twilio's REST API, only to numbers with an opt-in on record.

Every attempt is logged (sent | refused | failed) and no error ever reaches the caller: an
SMS is a side effect of a phone call, and must never break the call."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from sqlalchemy.exc import SQLAlchemyError
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from storage.consent import ConsentStore
from storage.sms_log import SmsLog

logger = logging.getLogger(__name__)  # not `log`: that is the SMS log

PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32  # Settings' default: no real account
TIMEOUT_S = 10.0  # the library's default is no timeout at all: a hung socket would pin a thread


@dataclass(frozen=True)
class SmsResult:
    status: str  # sent | refused | failed
    sid: str | None = None  # Twilio's message SID, when sent
    error: str | None = None


class RebasedHttpClient(TwilioHttpClient):
    """The library's own HTTP client, but whatever it addresses to *.twilio.com goes to
    another base URL (a Twilio-compatible endpoint, or a local fake in tests). Rewriting here,
    after the client has applied edge/region, leaves everything else on the production path."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        self._prefix = self._prefix.rstrip("/")

    def rebase(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def _describe(exc: Exception) -> str:
    # Not str(exc): the library colours it with ANSI codes when stderr is a terminal.
    if isinstance(exc, TwilioRestException):
        return f"Twilio HTTP {exc.status}, error {exc.code}: {exc.msg}"
    if isinstance(exc, TwilioServiceException):
        return f"Twilio HTTP {exc.status}, error {exc.code}: {exc.title} {exc.detail or ''}"
    return f"{type(exc).__name__}: {exc}"


class SmsSender:
    def __init__(
        self,
        consent: ConsentStore,
        log: SmsLog,
        account_sid: str | None,
        auth_token: str | None,
        api_base_url: str | None = None,
    ) -> None:
        self._consent = consent
        self._log = log
        self._client: Client | None = None
        self.disabled_reason: str | None = None
        real_account = bool(account_sid) and account_sid != PLACEHOLDER_ACCOUNT_SID
        if api_base_url is None and not (real_account and auth_token):
            # Never send the development token (or none) to the real Twilio.
            self.disabled_reason = (
                "SMS disabled: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                "(or TWILIO_API_BASE_URL for a Twilio-compatible endpoint)"
            )
            logger.warning("%s", self.disabled_reason)
            return
        http = (
            RebasedHttpClient(api_base_url) if api_base_url else TwilioHttpClient(timeout=TIMEOUT_S)
        )
        # Credentials are always passed explicitly, so the library never falls back to
        # TWILIO_* variables of the process environment.
        self._client = Client(account_sid, auth_token, http_client=http)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def send(
        self,
        business_id: int,
        from_number: str,
        to: str,
        body: str,
        purpose: str,
        call_sid: str | None = None,
    ) -> SmsResult:
        # Consent lookup, the REST call and the log are all blocking: keep them off the loop.
        return await asyncio.to_thread(
            self._send, business_id, from_number, to, body, purpose, call_sid
        )

    def _send(
        self,
        business_id: int,
        from_number: str,
        to: str,
        body: str,
        purpose: str,
        call_sid: str | None,
    ) -> SmsResult:
        result = self._attempt(business_id, from_number, to, body)
        try:
            self._log.log(
                business_id,
                to,
                purpose,
                body,
                result.status,
                twilio_sid=result.sid,
                error=result.error,
                call_sid=call_sid,
            )
        except SQLAlchemyError:
            logger.exception("could not log SMS to %s (%s): %s", to, purpose, result)
        return result

    def _attempt(self, business_id: int, from_number: str, to: str, body: str) -> SmsResult:
        try:
            consented = self._consent.has_opt_in(business_id, to, "sms")
        except SQLAlchemyError:
            logger.exception("consent check failed for %s", to)
            return SmsResult("refused", error="consent could not be checked")
        if not consented:
            return SmsResult("refused", error="no SMS opt-in on record for this number")
        if self._client is None:
            return SmsResult("failed", error=self.disabled_reason)
        try:
            message = self._client.messages.create(to=to, from_=from_number, body=body)
        except (TwilioException, requests.RequestException) as exc:
            logger.warning("SMS to %s failed: %s", to, _describe(exc))
            return SmsResult("failed", error=_describe(exc))
        except Exception as exc:  # a bug or an odd reply must not end the call either
            logger.exception("SMS to %s failed unexpectedly", to)
            return SmsResult("failed", error=_describe(exc))
        return SmsResult("sent", sid=message.sid)
