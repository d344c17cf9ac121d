"""People who work for a business, and their API tokens.

A token is shown once, when the user is added; only its SHA-256 is stored, so a copy of the
database does not let anyone in. Tokens carry 256 random bits, so an unsalted hash is
enough (there is nothing to brute-force). Synchronous: async callers use asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from storage.db import iso as _iso
from storage.db import session_factory
from storage.models import Business, User

ROLES = ("dispatcher", "admin", "owner")  # each can do what the ones before it can
RANK = {role: i for i, role in enumerate(ROLES)}
TOKEN_PREFIX = "va_"
MAX_TOKEN_CHARS = 200  # a real token is 46; anything much longer is not worth hashing


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class UserInfo:
    id: int
    business_id: int
    role: str
    name: str | None

    def can(self, role: str) -> bool:
        """At least `role`: an owner can do what an admin can, an admin what a dispatcher can."""
        return RANK[self.role] >= RANK[role]


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def add(self, business_id: int, role: str, name: str | None = None) -> tuple[int, str]:
        """A new user and their token. The token is not stored: hand it over now."""
        if role not in RANK:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        token = new_token()
        with self._sessions.begin() as s:
            if s.get(Business, business_id) is None:
                raise LookupError(f"no business {business_id}")
            user = User(
                business_id=business_id,
                name=name,
                role=role,
                token_hash=hash_token(token),
                created_at=datetime.now(UTC),
                disabled=False,
            )
            s.add(user)
            s.flush()
            return user.id, token

    def authenticate(self, token: str) -> UserInfo | None:
        """The enabled user holding this token, or None."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        with self._sessions() as s:
            user = s.scalar(select(User).where(User.token_hash == hash_token(token)))
            if user is None or user.disabled:
                return None
            return UserInfo(user.id, user.business_id, user.role, user.name)

    def list(self, business_id: int) -> list[dict[str, Any]]:
        with self._sessions() as s:
            users = s.scalars(select(User).where(User.business_id == business_id).order_by(User.id))
            return [
                {
                    "id": u.id,
                    "business_id": u.business_id,
                    "name": u.name,
                    "role": u.role,
                    "created_at": _iso(u.created_at),
                    "disabled": u.disabled,
                }
                for u in users
            ]

    def disable(self, user_id: int, business_id: int | None = None) -> int:
        """Refuse the user's token from now on; returns their business. With `business_id`,
        only within that business (another business's user is as unknown as a missing one)."""
        with self._sessions.begin() as s:
            user = s.get(User, user_id)
            if user is None or (business_id is not None and user.business_id != business_id):
                raise LookupError(f"no user {user_id}")
            user.disabled = True
            return user.business_id
