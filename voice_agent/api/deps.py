"""What the service's HTTP handlers are given: the app's stores, and for the dashboard API
the user behind the bearer token. Every store is built once, on `Services`, by the
application factory (voice_agent.app); a handler names the one it needs by its type here.

Bearer tokens: `Authorization: Bearer va_…` (from `voice-agent users add` or
`POST /api/users`). A missing, unknown or disabled token is a 401 with
`WWW-Authenticate: Bearer`. Roles nest:

- dispatcher: read calls, bookings, messages, handoffs; mark messages handled
- admin: that, plus manage users (and business settings, when the API has them)
- owner: everything, including the audit log

Every query behind these dependencies is scoped to `user.business_id`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage.audit import AuditLog
from storage.claims import ClaimStore
from storage.live import EventBus
from storage.recordings import RecordingStore
from storage.tenant_queries import TenantQueries
from storage.users import UserInfo, UserStore
from voice_agent.services import ServicesDep


def _users(services: ServicesDep) -> UserStore:
    return services.users


def _audit(services: ServicesDep) -> AuditLog:
    return services.audit


def _queries(services: ServicesDep) -> TenantQueries:
    return services.queries


def _recordings(services: ServicesDep) -> RecordingStore | None:
    return services.recordings


def _claims(services: ServicesDep) -> ClaimStore:
    return services.claims


def _bus(services: ServicesDep) -> EventBus:
    return services.live.bus


Users = Annotated[UserStore, Depends(_users)]
Audit = Annotated[AuditLog, Depends(_audit)]
Queries = Annotated[TenantQueries, Depends(_queries)]
Recordings = Annotated[RecordingStore | None, Depends(_recordings)]  # None: never recorded
Claims = Annotated[ClaimStore, Depends(_claims)]
Bus = Annotated[EventBus, Depends(_bus)]  # the live feed: in-process, or Redis pub/sub


def no_store(response: Response) -> None:
    """For routers whose answers hold transcripts, numbers or tokens."""
    response.headers["Cache-Control"] = "no-store"


# ---- who is asking ------------------------------------------------------------------------

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


async def current_user(
    users: Users,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> UserInfo:
    if credentials is None:
        raise unauthorized()
    user = await asyncio.to_thread(users.authenticate, credentials.credentials)
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


def actor(user: UserInfo) -> str:
    """How the audit log names a user."""
    return f"user:{user.id}"
