"""GET /api/events over a real server: tokens, tenant isolation, keep-alive, disconnects,
the token kept out of the access log, and two workers sharing one Redis."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI

from storage.audit import AuditLog
from storage.businesses import BusinessStore
from storage.db import make_engine, upgrade
from storage.profiles import BusinessProfile
from storage.users import UserStore
from tests.api_support import no_models
from tests.conftest import require_service
from tests.console_support import (
    ConsoleServer,
    SseClient,
    TrackingBus,
    console_app,
    tracking_bus,
    wait_for,
)
from voice_agent.api.events import scrub_token, sse_frame
from voice_agent.notify.notifier import Notifier
from voice_agent.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
B_LINE = "+15550100300"


@dataclass
class Site:
    app: FastAPI
    url: str
    settings: Settings
    bus: TrackingBus
    notifier: Notifier
    b_id: int
    tokens: dict[str, str]  # "a", "b"


def seed(data: Path, redis_url: str | None = None) -> tuple[Settings, int, dict[str, str]]:
    settings = Settings(
        data_dir=data, twilio_auth_token="test-auth-token-1234", redis_url=redis_url
    )
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    b_id = BusinessStore(engine).add("Sparks Electric", B_LINE, "America/Chicago")
    users = UserStore(engine)
    tokens = {"a": users.add(1, "dispatcher", "ann")[1], "b": users.add(b_id, "owner", "bo")[1]}
    engine.dispose()
    return settings, b_id, tokens


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings, b_id, tokens = seed(tmp_path_factory.mktemp("events"))
    app = console_app(settings, loader=no_models)
    app.state.services.sse_keepalive_s = 1.0
    with ConsoleServer(app) as url:
        notifier = app.state.services.notifier
        yield Site(app, url, settings, tracking_bus(app), notifier, b_id, tokens)


def business(site: Site, business_id: int) -> BusinessProfile:
    """The business as the Notifier takes it (from the database, as calls do)."""
    engine = make_engine(site.settings.resolved_database_url())
    try:
        profile = BusinessStore(engine).by_id(business_id)
    finally:
        engine.dispose()
    assert profile is not None
    return profile


def sid() -> str:
    return "CA" + secrets.token_hex(16)


# --- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"Authorization": "Bearer va_not-a-real-token"}, {}),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, {}),
        ({}, {"token": "va_not-a-real-token"}),
        ({}, {"token": ""}),
    ],
)
def test_no_valid_token_is_401_with_a_bearer_challenge(
    site: Site, headers: dict[str, str], params: dict[str, str]
) -> None:
    r = httpx.get(f"{site.url}/api/events", headers=headers, params=params, timeout=10)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert site.bus.open[1] == 0 and site.bus.open[site.b_id] == 0


async def test_the_header_or_the_query_token_opens_the_stream(site: Site) -> None:
    for client in (
        SseClient(site.url, site.tokens["a"]),
        SseClient(site.url, params={"token": site.tokens["a"]}),
    ):
        async with client:
            assert client.response is not None
            assert client.response.status_code == 200
            assert client.response.headers["content-type"].startswith("text/event-stream")
            assert client.response.headers["cache-control"] == "no-store"
            first = await client.frame()
            assert first.retry == 3000 and first.comments == ["connected"]


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_a_query_token_never_reaches_the_access_log(site: Site) -> None:
    access = logging.getLogger("uvicorn.access")
    captured, level = Captured(), access.level
    access.addHandler(captured)
    access.setLevel(logging.INFO)
    try:
        token = site.tokens["a"]
        async with SseClient(site.url, params={"token": token, "x": "1"}) as client:
            assert (await client.frame()).comments == ["connected"]
        wrong = "va_wrong-" + secrets.token_hex(8)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"{site.url}/api/events", params={"token": wrong})
        assert r.status_code == 401
        await wait_for(lambda: len(captured.lines) >= 2, "two access log lines")
    finally:
        access.removeHandler(captured)
        access.setLevel(level)
    lines = [line for line in captured.lines if "/api/events" in line]
    assert len(lines) == 2, captured.lines
    assert "/api/events?x=1" in lines[0] and "/api/events " in lines[1], lines
    assert not [line for line in captured.lines if token in line or wrong in line]
    assert not [line for line in captured.lines if "token" in line]


# --- what goes where -----------------------------------------------------------------------


async def test_events_reach_their_business_only_in_order(site: Site) -> None:
    a, b = business(site, 1), business(site, site.b_id)
    call, other = sid(), sid()
    published = [
        ("call.started", {"call_sid": call, "from": "+15555550123", "to": a.line}),
        ("call.transcript", {"call_sid": call, "speaker": "agent", "text": "Bluebird, hi."}),
        ("call.transcript", {"call_sid": call, "speaker": "caller", "text": 'Water <b>"x"</b>'}),
        ("call.handed_off", {"call_sid": call, "caller": "+15555550123", "reason": "emergency"}),
        ("booking.created", {"call_sid": call, "booking": {"id": 7, "name": "Maria"}}),
        ("message.created", {"call_sid": call, "message": {"id": 8, "reason": "quote"}}),
        ("call.ended", {"call_sid": call, "outcome": "handed_off"}),
    ]
    async with (
        SseClient(site.url, site.tokens["a"]) as for_a,
        SseClient(site.url, site.tokens["b"]) as for_b,
    ):
        assert (await for_a.frame()).comments == ["connected"]
        assert (await for_b.frame()).comments == ["connected"]
        for event, data in published:
            site.notifier.publish(a, event, data)  # as calls do, from any thread
        site.notifier.publish(b, "call.started", {"call_sid": other, "from": "+1555"})

        got = [await for_a.event() for _ in published]
        assert [f.event for f in got] == [
            "call.started",
            "call.transcript",
            "call.transcript",
            "call.handoff",
            "booking.created",
            "message.created",
            "call.ended",
        ]
        for frame, (_, data) in zip(got, published, strict=True):
            assert frame.data == {"type": frame.event, "call_sid": call, "data": data}

        # B's stream had A's seven events queued before its own, had any leaked.
        own = await for_b.event()
        assert (own.event, own.data["call_sid"]) == ("call.started", other)  # type: ignore[index]
        site.notifier.publish(a, "call.ended", {"call_sid": call, "outcome": "x"})
        assert (await for_a.event()).event == "call.ended"
        with pytest.raises(TimeoutError):
            await for_b.event(timeout_s=1.5)


async def test_a_quiet_stream_gets_keep_alive_comments(site: Site) -> None:
    async with SseClient(site.url, site.tokens["b"]) as client:
        assert (await client.frame()).comments == ["connected"]
        assert (await client.frame(timeout_s=5)).comments == ["keep-alive"]
        assert (await client.frame(timeout_s=5)).comments == ["keep-alive"]


async def streams_closed(site: Site) -> None:
    """An earlier test's client is gone, but the server notices only at its next write (a
    keep-alive a second later, later on a loaded machine): wait for its stream to close."""
    await wait_for(lambda: site.bus.open[site.b_id] == 0, "earlier streams to close", 60)


async def test_the_stream_ends_when_the_client_disconnects(site: Site) -> None:
    await streams_closed(site)
    client = SseClient(site.url, site.tokens["b"])
    await client.__aenter__()
    assert (await client.frame()).comments == ["connected"]
    assert site.bus.open[site.b_id] == 1
    await client.close()
    await wait_for(lambda: site.bus.open[site.b_id] == 0, "the subscription to close", 60)
    # and nothing is left half-open: the next client is served as usual
    async with SseClient(site.url, site.tokens["b"]) as again:
        assert (await again.frame()).comments == ["connected"]


async def test_a_stream_ends_in_good_order_after_its_maximum_age(site: Site) -> None:
    await streams_closed(site)
    services = site.app.state.services
    max_age_s, services.sse_max_age_s = services.sse_max_age_s, 1.5
    try:
        async with SseClient(site.url, site.tokens["b"]) as client:
            assert (await client.frame()).comments == ["connected"]
            assert (await client.frame()).comments == ["keep-alive"]  # at 1 s
            assert (await client.frame()).comments == ["reconnect"]  # at 1.5 s
            with pytest.raises(EOFError):
                await client.frame()
    finally:
        services.sse_max_age_s = max_age_s
    await wait_for(lambda: site.bus.open[site.b_id] == 0, "the subscription to close", 60)


def test_following_the_live_feed_is_audited(site: Site) -> None:
    engine = make_engine(site.settings.resolved_database_url())
    try:
        user = UserStore(engine).authenticate(site.tokens["a"])
        assert user is not None
        with httpx.stream(
            "GET", f"{site.url}/api/events", params={"token": site.tokens["a"]}, timeout=10
        ) as response:
            assert response.status_code == 200
            next(response.iter_lines())
        follows = [e for e in AuditLog(engine).entries(1) if e["action"] == "follow_live_feed"]
    finally:
        engine.dispose()
    assert follows and follows[0]["user_id"] == user.id
    assert follows[0]["actor"] == f"user:{user.id}" and follows[0]["target"] is None


# --- framing -------------------------------------------------------------------------------


def test_event_types_cannot_inject_fields() -> None:
    assert sse_frame({"type": "call.ended\ndata: {}", "data": {}}) is None
    assert sse_frame({"type": None}) is None
    frame = sse_frame({"type": "call.transcript", "call_sid": "CA1", "data": {"text": "a\nb"}})
    assert frame == (
        'event: call.transcript\ndata: {"type":"call.transcript","call_sid":"CA1",'
        '"data":{"text":"a\\nb"}}\n\n'
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"token=va_x", b""),
        (b"a=1&token=va_x&b=2", b"a=1&b=2"),
        (b"TOKEN=va_x&%74oken=va_y&tokens=1", b"tokens=1"),
        (b"a=token", b"a=token"),
        (b"%74oken=va_x", b""),
        (b"a=1&&b=2", b"a=1&b=2"),
    ],
)
def test_scrub_token(before: bytes, after: bytes) -> None:
    scope = {"query_string": before}
    scrub_token(scope)
    assert scope["query_string"] == after


# --- two workers, one Redis ----------------------------------------------------------------


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        require_service("Redis at 127.0.0.1:6379", str(exc))


async def test_a_console_on_one_worker_sees_calls_handled_by_another(
    tmp_path: Path,
) -> None:
    redis_or_skip()
    settings, b_id, tokens = seed(tmp_path / "shared", REDIS_URL)  # one database
    one, two = console_app(settings, no_models), console_app(settings, no_models)
    assert one.state.services.live is not two.state.services.live  # two LiveState objects
    with ConsoleServer(one) as url_one, ConsoleServer(two):
        a = BusinessStore(one.state.services.db).by_id(1)
        assert a is not None
        async with (
            SseClient(url_one, tokens["a"]) as for_a,
            SseClient(url_one, tokens["b"]) as for_b,
        ):
            assert (await for_a.frame()).comments == ["connected"]
            assert (await for_b.frame()).comments == ["connected"]
            # Redis confirms a SUBSCRIBE asynchronously: publish until it is through.
            probe = sid()
            for _ in range(300):  # up to a minute
                two.state.services.notifier.publish(a, "call.ended", {"call_sid": probe})
                try:
                    frame = await for_a.event(timeout_s=0.2)
                except TimeoutError:
                    continue
                assert frame.data["call_sid"] == probe  # type: ignore[index]
                break
            else:
                raise AssertionError("the first worker never received the second's event")
            call = sid()
            data = {"call_sid": call, "caller": "+15555550123", "reason": "emergency"}
            two.state.services.notifier.publish(a, "call.handed_off", data)
            frame = await for_a.event()
            while frame.data["call_sid"] == probe:  # type: ignore[index]
                frame = await for_a.event()
            assert (frame.event, frame.data) == (
                "call.handoff",
                {"type": "call.handoff", "call_sid": call, "data": data},
            )
            with pytest.raises(TimeoutError):
                await for_b.event(timeout_s=1.0)
        bus = tracking_bus(one)
        await wait_for(lambda: bus.open[1] == bus.open[b_id] == 0, "both subscriptions to close")


# --- the schema ----------------------------------------------------------------------------


def test_openapi_documents_the_console_endpoints(site: Site) -> None:
    paths = httpx.get(site.url + "/openapi.json", timeout=10).json()["paths"]
    for path, method in [
        ("/api/events", "get"),
        ("/api/console/context", "get"),
        ("/api/console/handoffs", "get"),
        ("/api/handoffs/{handoff_id}/claim", "post"),
    ]:
        op = paths[path][method]
        assert op["summary"] and op["security"] == [{"token": []}], (path, op)
        assert "401" in op["responses"], path
    events = paths["/api/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert [p["name"] for p in events["parameters"]] == ["token"]
    assert {"404", "409"} <= set(paths["/api/handoffs/{handoff_id}/claim"]["post"]["responses"])
    assert not [p for p in paths if p.startswith("/console")]  # pages are not API


def test_the_console_page_and_its_assets_are_served_by_the_app(site: Site) -> None:
    page = httpx.get(site.url + "/console", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assets = [link for link in links if link.startswith("/console/static/")]
    assert sorted(links) == sorted([*assets, "data:,"])  # nothing from anywhere else
    assert len(assets) == 7, assets  # six scripts and the stylesheet
    for asset in assets:
        r = httpx.get(site.url + asset, timeout=10)
        assert r.status_code == 200 and r.content, asset
    assert httpx.get(site.url + "/console/", timeout=10).status_code == 308
