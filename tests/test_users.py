"""Users and tokens, and the audit log, against a real SQLite database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from storage.audit import AuditLog
from storage.businesses import BusinessStore
from storage.db import make_engine, upgrade
from storage.models import User
from storage.phone_refs import phone_ref
from storage.users import UserInfo, UserStore


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)  # the demo business, id 1
    yield engine
    engine.dispose()


def test_a_token_is_returned_once_and_only_its_hash_is_stored(engine: Engine) -> None:
    users = UserStore(engine)
    user_id, token = users.add(1, "admin", "Dana")
    assert token.startswith("va_") and len(token) >= 40
    with engine.connect() as conn:
        rows = conn.execute(select(User.__table__)).mappings().all()
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert not any(token in str(v) for r in rows for v in r.values())
    assert users.authenticate(token) == UserInfo(user_id, 1, "admin", "Dana")
    _, other = users.add(1, "admin", "Dana")
    assert other != token


@pytest.mark.parametrize("token", ["", "va_nope", "x" * 10_000])
def test_unknown_tokens_are_refused(engine: Engine, token: str) -> None:
    UserStore(engine).add(1, "owner")
    assert UserStore(engine).authenticate(token) is None


def test_roles_and_businesses_are_checked(engine: Engine) -> None:
    users = UserStore(engine)
    with pytest.raises(ValueError, match="unknown role 'root'"):
        users.add(1, "root")
    with pytest.raises(LookupError, match="no business 42"):
        users.add(42, "owner")
    assert users.list(1) == []


def test_roles_nest() -> None:
    owner, admin, dispatcher = (UserInfo(1, 1, r, None) for r in ("owner", "admin", "dispatcher"))
    assert owner.can("owner") and owner.can("admin") and owner.can("dispatcher")
    assert not admin.can("owner") and admin.can("admin") and admin.can("dispatcher")
    assert not dispatcher.can("admin") and dispatcher.can("dispatcher")


def test_list_per_business_and_disable(engine: Engine) -> None:
    b2 = BusinessStore(engine).add("Sparks Electric", "+15550100300", "America/Chicago")
    users = UserStore(engine)
    a_id, a_token = users.add(1, "owner", "Ann")
    d_id, _ = users.add(1, "dispatcher")
    b_id, b_token = users.add(b2, "owner", "Bo")
    listed = users.list(1)
    assert [(u["id"], u["role"], u["name"], u["disabled"]) for u in listed] == [
        (a_id, "owner", "Ann", False),
        (d_id, "dispatcher", None, False),
    ]
    assert all("token_hash" not in u for u in listed)
    assert [u["id"] for u in users.list(b2)] == [b_id]

    with pytest.raises(LookupError):  # scoped: business 1 cannot disable business 2's user
        users.disable(b_id, business_id=1)
    assert users.authenticate(b_token) is not None
    assert users.disable(a_id) == 1
    assert users.authenticate(a_token) is None
    assert users.list(1)[0]["disabled"] is True
    with pytest.raises(LookupError):
        users.disable(999)


def test_audit_entries_are_per_business_newest_first(engine: Engine) -> None:
    b2 = BusinessStore(engine).add("Sparks Electric", "+15550100300", "America/Chicago")
    user_id, _ = UserStore(engine).add(1, "dispatcher")
    audit = AuditLog(engine)
    audit.record(1, f"user:{user_id}", "read_transcript", "CA1", user_id=user_id)
    audit.record(b2, "cli", "create_user", "user:9", {"role": "owner"})
    audit.record(1, "system", "purge_recordings", detail={"count": 3})
    entries = audit.entries(1)
    assert [(e["action"], e["target"], e["detail"]) for e in entries] == [
        ("purge_recordings", None, {"count": 3}),
        ("read_transcript", "CA1", {}),
    ]
    assert entries[1]["user_id"] == user_id and entries[1]["actor"] == f"user:{user_id}"
    assert [e["action"] for e in audit.entries(b2)] == ["create_user"]
    assert [e["action"] for e in audit.entries(1, limit=1, offset=1)] == ["read_transcript"]


def test_phone_ref_is_keyed_stable_and_does_not_contain_the_number() -> None:
    key, other_key = bytes(32), bytes(range(32))
    ref = phone_ref(key, 1, "+15555550123")
    assert ref == phone_ref(key, 1, " +15555550123 ") != phone_ref(key, 1, "+15555550124")
    assert ref.startswith("phone-hmac:") and "5555550123" not in ref
    # Without the key nobody can recompute it (an unkeyed hash is reversed by enumeration),
    # and a business's references do not match another's.
    assert ref != phone_ref(other_key, 1, "+15555550123")
    assert ref != phone_ref(key, 2, "+15555550123")
    assert hashlib.sha256(b"+15555550123").hexdigest()[:16] not in ref
