"""Bearer tokens and roles for the dashboard API.

`Authorization: Bearer va_…` (a token from `voice-agent users add` or `POST /api/users`).
A missing, unknown or disabled token is a 401 with `WWW-Authenticate: Bearer`. Roles nest:

- dispatcher: read calls, bookings, messages, handoffs; mark messages handled
- admin: that, plus manage users (and business settings, when the API has them)
- owner: everything, including the audit log

Every query behind these dependencies is scoped to `user.business_id`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage.audit import AuditLog
from storage.users import UserInfo, UserStore

bearer = HTTPBearer(
    auto_error=False,  # our own 401, with the header and the same answer for every failure
    scheme_name="token",
    bearerFormat="va_…",
    description="A user token, from `voice-agent users add` or `POST /api/users`.",
)


def unauthorized(error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(
        401, "a valid bearer token is required", headers={"WWW-Authenticate": challenge}
    )


def user_store(request: Request) -> UserStore:
    """`services.users` when the app has one, else one built on `services.db` (cached)."""
    services = request.app.state.services
    store = getattr(services, "users", None)
    if store is None:
        store = getattr(request.app.state, "api_user_store", None)
        if store is None:
            store = request.app.state.api_user_store = UserStore(services.db)
    return store


def audit_log(request: Request) -> AuditLog:
    services = request.app.state.services
    log = getattr(services, "audit", None)
    if log is None:
        log = getattr(request.app.state, "api_audit_log", None)
        if log is None:
            log = request.app.state.api_audit_log = AuditLog(services.db)
    return log


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> UserInfo:
    if credentials is None:
        raise unauthorized()
    user = await asyncio.to_thread(user_store(request).authenticate, credentials.credentials)
    if user is None:
        raise unauthorized("invalid_token")
    return user


def require(role: str):  # type: ignore[no-untyped-def]
    """A dependency: the current user, if they hold `role` or a higher one; else 403."""

    async def dependency(user: Annotated[UserInfo, Depends(current_user)]) -> UserInfo:
        if not user.can(role):
            raise HTTPException(403, f"this needs the {role} role or higher")
        return user

    dependency.__name__ = f"require_{role}"
    return dependency


Reader = Annotated[UserInfo, Depends(require("dispatcher"))]  # every role reads
Dispatcher = Reader  # and marks messages handled
Admin = Annotated[UserInfo, Depends(require("admin"))]
Owner = Annotated[UserInfo, Depends(require("owner"))]
