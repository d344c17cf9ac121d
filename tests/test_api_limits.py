"""Out-of-range input to the dashboard API is a 422 naming the parameter, on SQLite and on
PostgreSQL alike: never a driver error (bigint out of range, NUL in text) or an
OverflowError at the edge of Python's dates turned into a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from storage.db import make_engine, upgrade
from storage.users import UserStore
from tests.api_support import LiveServer, api_app
from tests.pg_support import KINDS, database_url
from voice_agent.settings import Settings

BEYOND_64_BITS = str(2**63)
BEYOND_INT = str(2**31)
HUGE = "9" * 40
SID = "CA" + "0" * 32


@dataclass
class Api:
    url: str
    token: str

    def call(self, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=KINDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    with database_url(request.param, tmp) as url:
        settings = Settings(data_dir=tmp, database_url=url, twilio_auth_token="limits-token-1234")
        engine = make_engine(settings.resolved_database_url())
        upgrade(engine)
        _, token = UserStore(engine).add(1, "owner", "Owner")
        engine.dispose()
        with LiveServer(api_app(settings)) as base:
            yield Api(base, token)


@pytest.mark.parametrize(
    ("method", "path", "params", "where"),
    [
        # dates Python can parse but not move by a time zone or a day
        ("GET", "/api/calls", {"until": "9999-12-31"}, ["query", "until"]),
        ("GET", "/api/calls", {"until": "9999-12-31T23:59:59.999999"}, ["query", "until"]),
        ("GET", "/api/calls", {"since": "9999-12-31T23:59:59-05:00"}, ["query", "since"]),
        ("GET", "/api/calls", {"since": "0001-01-01T00:00:00+05:00"}, ["query", "since"]),
        ("GET", "/api/calls", {"since": "0001-01-01"}, ["query", "since"]),
        ("GET", "/api/bookings", {"to": "9999-12-31"}, ["query", "to"]),
        ("GET", "/api/bookings", {"from": "0001-01-01"}, ["query", "from"]),
        # dates that are not dates at all
        ("GET", "/api/calls", {"since": "99999-01-01"}, ["query", "since"]),
        ("GET", "/api/calls", {"since": "0000-01-01"}, ["query", "since"]),
        ("GET", "/api/bookings", {"from": "10000-01-01"}, ["query", "from"]),
        # integers past what the databases hold
        ("GET", "/api/calls", {"offset": BEYOND_64_BITS}, ["query", "offset"]),
        ("GET", "/api/calls", {"offset": HUGE}, ["query", "offset"]),
        ("GET", "/api/bookings", {"offset": BEYOND_64_BITS}, ["query", "offset"]),
        ("GET", "/api/messages", {"offset": BEYOND_64_BITS}, ["query", "offset"]),
        ("GET", "/api/handoffs", {"offset": BEYOND_64_BITS}, ["query", "offset"]),
        ("GET", "/api/audit", {"offset": BEYOND_64_BITS}, ["query", "offset"]),
        ("GET", "/api/calls", {"limit": BEYOND_64_BITS}, ["query", "limit"]),
        ("POST", f"/api/messages/{BEYOND_INT}/handled", {}, ["path", "message_id"]),
        ("POST", f"/api/messages/{BEYOND_64_BITS}/handled", {}, ["path", "message_id"]),
        ("POST", f"/api/messages/{HUGE}/handled", {}, ["path", "message_id"]),
        ("POST", "/api/messages/0/handled", {}, ["path", "message_id"]),
        # strings the database would refuse, or that no CallSid is
        ("GET", "/api/calls/CA%00x", {}, ["path", "call_sid"]),
        ("GET", "/api/calls/CA%00x/recording", {}, ["path", "call_sid"]),
        ("GET", "/api/calls/" + "C" * 65, {}, ["path", "call_sid"]),
        ("GET", "/api/calls/" + "C" * 5000, {}, ["path", "call_sid"]),
    ],
)
def test_out_of_range_input_is_a_422_naming_it(
    api: Api, method: str, path: str, params: dict[str, str], where: list[str]
) -> None:
    r = api.call(method, path, params=params)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert [e["loc"] for e in r.json()["detail"]] == [where]


def test_a_user_name_with_a_nul_is_a_422(api: Api) -> None:
    r = api.call("POST", "/api/users", json={"role": "dispatcher", "name": "Dana\x00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"], r.text


def test_the_edges_of_the_ranges_are_answered(api: Api) -> None:
    for path, params in [
        ("/api/calls", {"since": "1900-01-01", "until": "9998-12-31"}),
        ("/api/calls", {"since": "1900-01-01T00:00:00+14:00", "until": "9998-12-31T23:59-12:00"}),
        ("/api/bookings", {"from": "1900-01-01", "to": "9998-12-31"}),
        ("/api/calls", {"offset": str(2**31 - 1)}),
        ("/api/audit", {"offset": str(2**31 - 1)}),
    ]:
        r = api.call("GET", path, params=params)
        assert r.status_code == 200, (path, params, r.text[:300])
    assert api.call("GET", f"/api/calls/{SID}").status_code == 404
    assert api.call("POST", f"/api/messages/{2**31 - 1}/handled").status_code == 404
