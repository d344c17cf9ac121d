"""The dashboard API over real HTTP: tokens, roles, tenant isolation, audit, filters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from storage.audit import AuditLog
from storage.businesses import BusinessStore
from storage.db import make_engine, upgrade
from storage.models import Message, User
from storage.reception import ReceptionStore
from storage.recordings import RecordingStore
from storage.users import UserStore
from tests.api_support import CallSpec, LiveServer, add_call, add_recording, api_app, run_users_cli
from voice_agent.settings import Settings

A_LINE, B_LINE = "+15550100200", "+15550100300"  # the demo business (New York), and Sparks
A1, A2, A3, A4 = (f"CA{'a' * 31}{i}" for i in range(1, 5))
B1 = f"CA{'b' * 31}1"
MISSING = f"CA{'0' * 32}"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@dataclass
class World:
    url: str
    settings: Settings
    engine: Engine
    recordings: RecordingStore
    b_id: int
    tokens: dict[str, str]  # "a_owner", "a_admin", "a_dispatcher", "b_owner", "b_dispatcher"
    user_ids: dict[str, int]
    messages: dict[str, int]  # call SID -> message id
    bookings: dict[str, int]

    def get(self, who: str | None, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.auth(who), timeout=10, **kw)  # type: ignore[arg-type]

    def post(self, who: str | None, path: str, **kw: object) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.auth(who), timeout=10, **kw)  # type: ignore[arg-type]

    def auth(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("api-data")
    settings = Settings(data_dir=data, twilio_auth_token="test-auth-token-1234")
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)  # seeds the demo business, id 1
    b_id = BusinessStore(engine).add("Sparks Electric", B_LINE, "America/Chicago")

    calls = [
        CallSpec(A1, 1, "+15555550101", A_LINE, utc(2026, 3, 1, 10), "booked"),
        CallSpec(A2, 1, "+15555550102", A_LINE, utc(2026, 3, 2, 15), "message_taken"),
        # 22:00 on March 2 in New York, already March 3 in UTC
        CallSpec(A3, 1, "+15555550101", A_LINE, utc(2026, 3, 3, 3), "handed_off"),
        CallSpec(A4, 1, "+15555550103", A_LINE, utc(2026, 3, 4, 12), "abandoned"),
        CallSpec(B1, b_id, "+15555550199", B_LINE, utc(2026, 3, 2, 12), "booked"),
    ]
    for spec in calls:
        add_call(engine, spec)
    reception = ReceptionStore(engine)

    def book(business: int, sid: str, when: datetime) -> int:
        slot = (when, when + timedelta(hours=2))
        fields = {
            "scheduled_for": when,
            "duration_minutes": 120,
            "service": "drain cleaning",
            "name": "Maria Lopez",
            "phone": "+15555550101",
            "address": "12 Elm St",
            "problem": "clogged sink",
        }
        booking_id = reception.book(business, sid, 10, slot, fields)
        assert booking_id is not None
        return booking_id

    bookings = {
        A1: book(1, A1, utc(2099, 1, 5, 14)),
        "a-past": book(1, "CAnotacall", utc(2020, 1, 1, 15)),
        B1: book(b_id, B1, utc(2099, 1, 6, 15)),
    }
    note = {"name": "Sam", "callback_number": "+15555550102", "reason": "quote", "text": "hi"}
    messages = {
        A2: reception.take_message(1, A2, note),
        B1: reception.take_message(b_id, B1, {**note, "callback_number": "+15555550199"}),
    }
    reception.hand_off(1, A3, None, "emergency", "water everywhere")
    reception.hand_off(b_id, B1, None, "caller_asked", "wants a person")

    users = UserStore(engine)
    tokens, user_ids = {}, {}
    for who, business, role in [
        ("a_owner", 1, "owner"),
        ("a_admin", 1, "admin"),
        ("a_dispatcher", 1, "dispatcher"),
        ("b_owner", b_id, "owner"),
        ("b_dispatcher", b_id, "dispatcher"),
    ]:
        user_ids[who], tokens[who] = users.add(business, role, who)

    app = api_app(settings)
    recordings = app.state.services.recordings
    add_recording(recordings, A1)
    add_recording(recordings, B1)
    with LiveServer(app) as url:
        yield World(url, settings, engine, recordings, b_id, tokens, user_ids, messages, bookings)
    engine.dispose()


def sids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["call_sid"] for c in response.json()["items"]]


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer va_not-a-real-token", "Basic dXNlcjpwYXNz", "va_no-scheme"],
)
def test_missing_or_wrong_token_is_401_with_a_bearer_challenge(
    world: World, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    for path in ("/api/calls", f"/api/calls/{A1}", "/api/me", "/api/audit"):
        r = httpx.get(world.url + path, headers=headers, timeout=10)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.post(world.url + "/api/users", headers=headers, json={"role": "owner"})
    assert r.status_code == 401


def test_a_disabled_user_is_refused(world: World) -> None:
    users = UserStore(world.engine)
    user_id, token = users.add(1, "dispatcher", "leaver")
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(world.url + "/api/me", headers=headers).json()["id"] == user_id
    users.disable(user_id)
    r = httpx.get(world.url + "/api/me", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


# --- tenant isolation -------------------------------------------------------------------


def test_each_business_sees_only_its_own_calls(world: World) -> None:
    assert sids(world.get("a_dispatcher", "/api/calls")) == [A4, A3, A2, A1]
    assert sids(world.get("b_dispatcher", "/api/calls")) == [B1]
    # A filter that names the other business's caller finds nothing, rather than their call.
    assert sids(world.get("a_owner", "/api/calls", params={"caller": "+15555550199"})) == []


@pytest.mark.parametrize(("who", "other"), [("a_owner", "b"), ("b_owner", "a")])
def test_another_business_records_are_404_exactly_like_missing_ones(
    world: World, who: str, other: str
) -> None:
    their_calls = [B1] if other == "b" else [A1, A2, A3, A4]
    their_messages = {world.messages[B1]} if other == "b" else {world.messages[A2]}
    their_bookings = (
        {world.bookings[B1]} if other == "b" else {world.bookings[A1], world.bookings["a-past"]}
    )
    missing = world.get(who, f"/api/calls/{MISSING}")
    rec_missing = world.get(who, f"/api/calls/{MISSING}/recording")
    assert missing.status_code == rec_missing.status_code == 404
    for sid in their_calls:
        call = world.get(who, f"/api/calls/{sid}")
        assert (call.status_code, call.json()) == (404, missing.json())
        assert sid not in call.text
        rec = world.get(who, f"/api/calls/{sid}/recording")
        assert (rec.status_code, rec.json()) == (404, rec_missing.json())
        assert rec.headers["content-type"] == "application/json"

    nothing = world.post(who, "/api/messages/99999/handled")
    for message_id in their_messages:
        gone = world.post(who, f"/api/messages/{message_id}/handled")
        assert (gone.status_code, gone.json()) == (404, nothing.json())
        with world.engine.connect() as conn:
            handled = conn.scalar(select(Message.handled_at).where(Message.id == message_id))
        assert handled is None

    wide = {"from": "2000-01-01", "to": "2199-12-31"}
    bookings = world.get(who, "/api/bookings", params=wide).json()["items"]
    assert bookings and not {b["id"] for b in bookings} & their_bookings
    assert not {b["call_sid"] for b in bookings} & set(their_calls)
    messages = world.get(who, "/api/messages").json()["items"]
    assert messages and not {m["id"] for m in messages} & their_messages
    handoffs = world.get(who, "/api/handoffs").json()["items"]
    assert handoffs and not {h["call_sid"] for h in handoffs} & set(their_calls)


def test_user_and_audit_lists_are_per_business(world: World) -> None:
    b_users = world.get("b_owner", "/api/users").json()
    names = {u["name"] for u in b_users}
    assert {"b_dispatcher", "b_owner"} <= names
    assert not names & {"a_owner", "a_admin", "a_dispatcher", "leaver", "new dispatcher"}
    assert all("token" not in u and "token_hash" not in u for u in b_users)
    world.get("a_dispatcher", f"/api/calls/{A2}")
    a_actor = f"user:{world.user_ids['a_dispatcher']}"
    b_audit = world.get("b_owner", "/api/audit").json()
    assert all(e["actor"] != a_actor and e["target"] not in (A1, A2, A3, A4) for e in b_audit)


# --- roles ------------------------------------------------------------------------------


def test_dispatchers_read_admins_manage_users_owners_read_the_audit_log(world: World) -> None:
    assert world.post("a_dispatcher", "/api/users", json={"role": "dispatcher"}).status_code == 403
    assert world.get("a_dispatcher", "/api/users").status_code == 403
    assert world.get("a_dispatcher", "/api/audit").status_code == 403
    assert world.get("a_admin", "/api/audit").status_code == 403
    assert world.get("a_owner", "/api/audit").status_code == 200

    created = world.post(
        "a_admin", "/api/users", json={"role": "dispatcher", "name": "new dispatcher"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["role"] == "dispatcher" and body["token"].startswith("va_")
    assert created.headers["cache-control"] == "no-store"
    me = httpx.get(world.url + "/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json() == {"id": body["id"], "business_id": 1, "role": "dispatcher",
                         "name": "new dispatcher"}  # fmt: skip
    listed = world.get("a_admin", "/api/users").json()
    assert body["id"] in [u["id"] for u in listed]
    assert all("token" not in u for u in listed)

    # No one hands out more power than they hold.
    assert world.post("a_admin", "/api/users", json={"role": "owner"}).status_code == 403
    assert world.post("a_owner", "/api/users", json={"role": "owner"}).status_code == 201
    assert world.post("a_owner", "/api/users", json={"role": "root"}).status_code == 422

    audit = AuditLog(world.engine).entries(1)
    made = [
        e for e in audit if e["action"] == "create_user" and e["target"] == f"user:{body['id']}"
    ]
    assert made and made[0]["actor"] == f"user:{world.user_ids['a_admin']}"
    assert made[0]["detail"] == {"role": "dispatcher"}


def test_a_dispatcher_marks_a_message_handled(world: World) -> None:
    message_id = world.messages[A2]
    unhandled = world.get("a_dispatcher", "/api/messages", params={"handled": "false"}).json()
    assert [m["id"] for m in unhandled["items"]] == [message_id]
    assert unhandled["items"][0]["call_sid"] == A2
    first = world.post("a_dispatcher", f"/api/messages/{message_id}/handled")
    assert first.status_code == 200 and first.json()["handled"] is True
    again = world.post("a_dispatcher", f"/api/messages/{message_id}/handled").json()
    assert again["handled_at"] == first.json()["handled_at"]  # the first time is kept
    assert (
        world.get("a_dispatcher", "/api/messages", params={"handled": "false"}).json()["items"]
        == []
    )
    handled = world.get("a_dispatcher", "/api/messages", params={"handled": "true"}).json()
    assert [m["id"] for m in handled["items"]] == [message_id]
    entries = AuditLog(world.engine).entries(1)
    assert any(e["action"] == "handle_message" and e["target"] == f"message:{message_id}"
               for e in entries)  # fmt: skip


# --- transcripts, recordings, audit -----------------------------------------------------


def test_reading_a_transcript_is_audited(world: World) -> None:
    r = world.get("a_dispatcher", f"/api/calls/{A1}")
    assert r.status_code == 200, r.text
    call = r.json()
    assert call["from"] == "+15555550101" and call["outcome"] == "booked"
    assert [s["speaker"] for s in call["transcript"]] == ["agent", "caller"]
    assert call["transcript"][1]["text"] == f"This is call {A1}."
    assert call["turns"][0]["latency_ms"] == 950.0
    assert call["booking"]["service"] == "drain cleaning"
    assert call["booking"]["scheduled_for"] == "2099-01-05T09:00:00-05:00"  # New York time
    assert call["message"] is None and call["handoff"] is None
    assert call["recording"]["url"] == f"/api/calls/{A1}/recording"
    assert call["recording"]["duration_s"] == 1.5
    assert r.headers["cache-control"] == "no-store"

    entry = AuditLog(world.engine).entries(1, limit=1)[0]
    user_id = world.user_ids["a_dispatcher"]
    assert (entry["actor"], entry["user_id"], entry["action"], entry["target"]) == (
        f"user:{user_id}",
        user_id,
        "read_transcript",
        A1,
    )
    # ...and the owner can see it through the API.
    audit = world.get("a_owner", "/api/audit", params={"limit": 5}).json()
    assert audit[0]["action"] == "read_transcript" and audit[0]["target"] == A1

    handed_off = world.get("a_dispatcher", f"/api/calls/{A3}").json()
    assert handed_off["handoff"]["reason"] == "emergency" and handed_off["recording"] is None


def test_a_refused_read_leaves_no_trace_in_either_audit_log(world: World) -> None:
    before_a = len(AuditLog(world.engine).entries(1, limit=1000))
    before_b = len(AuditLog(world.engine).entries(world.b_id, limit=1000))
    assert world.get("a_dispatcher", f"/api/calls/{B1}").status_code == 404
    assert world.get("a_dispatcher", f"/api/calls/{B1}/recording").status_code == 404
    assert len(AuditLog(world.engine).entries(1, limit=1000)) == before_a
    assert len(AuditLog(world.engine).entries(world.b_id, limit=1000)) == before_b


def test_the_recording_streams_as_the_decrypted_wav_and_is_audited(world: World) -> None:
    r = world.get("b_dispatcher", f"/api/calls/{B1}/recording")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    info = world.recordings.for_call(B1)
    expected = b"".join(world.recordings.wav(info))
    assert r.content == expected and r.content[:4] == b"RIFF"
    assert int(r.headers["content-length"]) == len(expected) == 44 + 48000
    assert r.headers["cache-control"] == "no-store"
    entry = AuditLog(world.engine).entries(world.b_id, limit=1)[0]
    assert entry["action"] == "read_recording" and entry["target"] == B1
    assert entry["actor"] == f"user:{world.user_ids['b_dispatcher']}"

    none = world.get("a_dispatcher", f"/api/calls/{A4}/recording")
    assert none.status_code == 404


# --- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"since": "2026-03-02"}, [A4, A3, A2]),  # days are New York days
        ({"until": "2026-03-02"}, [A3, A2, A1]),  # A3 is 22:00 on the 2nd there
        ({"since": "2026-03-02", "until": "2026-03-02"}, [A3, A2]),
        ({"since": "2026-03-03T00:00:00Z"}, [A4, A3]),
        ({"until": "2026-03-03T03:00:00+00:00"}, [A3, A2, A1]),  # a date-time is included
        ({"until": "2026-03-02T21:59"}, [A2, A1]),  # naive: New York time
        ({"outcome": "booked"}, [A1]),
        ({"outcome": "handed_off"}, [A3]),
        ({"caller": "+15555550101"}, [A3, A1]),
        ({"caller": "+15555550101", "outcome": "booked"}, [A1]),
        ({"limit": 2}, [A4, A3]),
        ({"limit": 2, "offset": 2}, [A2, A1]),
    ],
)
def test_call_filters(world: World, params: dict, expected: list[str]) -> None:
    r = world.get("a_dispatcher", "/api/calls", params=params)
    assert sids(r) == expected
    if "limit" in params:
        assert r.json()["total"] == 4


def test_an_unencoded_plus_in_the_caller_filter_still_works(world: World) -> None:
    r = httpx.get(world.url + "/api/calls?caller=+15555550102", headers=world.auth("a_dispatcher"))
    assert sids(r) == [A2]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"outcome": "exploded"},
        {"caller": "555-0123"},
        {"limit": 0},
        {"limit": 1000},
        {"offset": -1},
    ],
)
def test_malformed_filters_are_422(world: World, params: dict) -> None:
    r = world.get("a_dispatcher", "/api/calls", params=params)
    assert r.status_code == 422
    [error] = r.json()["detail"]  # FastAPI's own shape, ours or its
    assert error["loc"] == ["query", next(iter(params))]


def test_bookings_default_to_upcoming_and_filter_by_day(world: World) -> None:
    upcoming = world.get("a_dispatcher", "/api/bookings").json()
    assert [b["id"] for b in upcoming["items"]] == [world.bookings[A1]]
    assert upcoming["items"][0]["call_sid"] == A1
    past = world.get(
        "a_dispatcher", "/api/bookings", params={"from": "2020-01-01", "to": "2020-01-01"}
    )
    assert [b["id"] for b in past.json()["items"]] == [world.bookings["a-past"]]
    assert past.json()["items"][0]["scheduled_for"] == "2020-01-01T10:00:00-05:00"
    assert past.json()["items"][0]["call_sid"] is None
    between = {"from": "2020-01-02", "to": "2098-12-31"}
    assert world.get("a_dispatcher", "/api/bookings", params=between).json()["items"] == []
    assert world.get("a_dispatcher", "/api/bookings", params={"to": "nope"}).status_code == 422


def test_handoffs(world: World) -> None:
    items = world.get("a_dispatcher", "/api/handoffs").json()["items"]
    assert [(h["call_sid"], h["reason"], h["summary"]) for h in items] == [
        (A3, "emergency", "water everywhere")
    ]


# --- schema, CLI ------------------------------------------------------------------------


def test_openapi_documents_the_api(world: World) -> None:
    schema = httpx.get(world.url + "/openapi.json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/me", "get"),
        ("/api/calls", "get"),
        ("/api/calls/{call_sid}", "get"),
        ("/api/calls/{call_sid}/recording", "get"),
        ("/api/bookings", "get"),
        ("/api/messages", "get"),
        ("/api/messages/{message_id}/handled", "post"),
        ("/api/handoffs", "get"),
        ("/api/users", "get"),
        ("/api/users", "post"),
        ("/api/audit", "get"),
    ]:
        op = paths[path][method]
        assert op["summary"] and op["security"] == [{"token": []}], (path, op)
        assert "401" in op["responses"]
    scheme = schema["components"]["securitySchemes"]["token"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    params = {p["name"] for p in paths["/api/calls"]["get"]["parameters"]}
    assert params == {"since", "until", "outcome", "caller", "limit", "offset"}
    assert {p["name"] for p in paths["/api/bookings"]["get"]["parameters"]} >= {"from", "to"}
    assert (
        "audio/wav"
        in paths["/api/calls/{call_sid}/recording"]["get"]["responses"]["200"]["content"]
    )
    detail = schema["components"]["schemas"]["CallDetail"]["properties"]
    assert {"from", "transcript", "turns", "booking", "message", "handoff", "recording"} <= set(
        detail
    )
    assert "404" in paths["/api/calls/{call_sid}"]["get"]["responses"]


def test_cli_users_add_prints_a_token_that_works_and_only_its_hash_is_stored(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["users", "add", "--business", str(world.b_id), "--role", "admin", "--name", "Cli"]
    assert run_users_cli([*argv, "--json"], world.settings) == 0
    out = json.loads(capsys.readouterr().out)
    token, user_id = out["token"], out["user_id"]

    me = httpx.get(world.url + "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"id": user_id, "business_id": world.b_id, "role": "admin", "name": "Cli"}
    assert sids(
        httpx.get(world.url + "/api/calls", headers={"Authorization": f"Bearer {token}"})
    ) == [B1]

    with world.engine.connect() as conn:
        stored = conn.scalar(select(User.token_hash).where(User.id == user_id))
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    db_files = list(Path(world.settings.data_dir).glob("voice-agent.db*"))
    assert db_files and not any(token.encode() in f.read_bytes() for f in db_files)
    entry = AuditLog(world.engine).entries(world.b_id, limit=1)[0]
    assert (entry["actor"], entry["action"], entry["target"]) == (
        "cli",
        "create_user",
        f"user:{user_id}",
    )

    assert (
        run_users_cli(["users", "list", "--business", str(world.b_id), "--json"], world.settings)
        == 0
    )
    listed = json.loads(capsys.readouterr().out)
    assert [u["name"] for u in listed if u["id"] == user_id] == ["Cli"]
    assert token not in json.dumps(listed)

    assert run_users_cli([*argv[:2], "--business", "999", "--role", "owner"], world.settings) == 1
    assert "no business 999" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_users_cli([*argv[:2], "--business", "1", "--role", "root"], world.settings)

    assert run_users_cli(["users", "disable", str(user_id)], world.settings) == 0
    assert (
        httpx.get(world.url + "/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
