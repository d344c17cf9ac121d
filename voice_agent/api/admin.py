"""/api/me, /api/users (admin), /api/audit (owner)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException

from voice_agent.api.deps import Admin, Audit, Owner, Reader, Users, actor
from voice_agent.api.models import AuditOut, Me, NewUser, NewUserOut, UserOut
from voice_agent.api.params import FORBIDDEN, Limit, Offset

router = APIRouter()


@router.get("/me", response_model=Me, summary="The user this token belongs to", tags=["users"])
async def me(user: Reader) -> dict[str, Any]:
    return {"id": user.id, "business_id": user.business_id, "role": user.role, "name": user.name}


@router.get(
    "/users",
    response_model=list[UserOut],
    summary="List the business's users (admin)",
    tags=["users"],
    responses=FORBIDDEN,
)
async def list_users(user: Admin, users: Users) -> Any:
    return await asyncio.to_thread(users.list, user.business_id)


@router.post(
    "/users",
    response_model=NewUserOut,
    status_code=201,
    summary="Add a user and return their token, once (admin)",
    tags=["users"],
    responses=FORBIDDEN,
)
async def create_user(user: Admin, users: Users, audit: Audit, new: NewUser) -> Any:
    if not user.can(new.role):
        raise HTTPException(403, f"a {user.role} cannot create a user with the {new.role} role")

    def create() -> dict[str, Any]:
        user_id, token = users.add(user.business_id, new.role, new.name)
        audit.record(
            user.business_id,
            actor(user),
            "create_user",
            f"user:{user_id}",
            {"role": new.role},
            user_id=user.id,
        )
        row = next(u for u in users.list(user.business_id) if u["id"] == user_id)
        return {**row, "token": token}

    return await asyncio.to_thread(create)


@router.get(
    "/audit",
    response_model=list[AuditOut],
    summary="The audit log, newest first (owner)",
    tags=["audit"],
    responses=FORBIDDEN,
)
async def list_audit(user: Owner, audit: Audit, limit: Limit = 100, offset: Offset = 0) -> Any:
    return await asyncio.to_thread(audit.entries, user.business_id, limit, offset)
