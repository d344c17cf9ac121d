"""CRM webhooks delivered over real HTTP to a local receiver that verifies signatures."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine

from storage.businesses import BusinessStore
from storage.db import make_engine, upgrade
from storage.webhook_store import WebhookStore
from tests.servers import AppThread, free_port
from voice_agent.notify.crm_webhooks import WebhookDispatcher, sign, verify_signature

LIMIT_S = 60  # generous: waits end as soon as the condition holds


@dataclass
class Hit:
    name: str
    event_id: str
    body: bytes
    verified: bool
    answered: int | None = None  # None while a slow handler still holds the request

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """POST /{name}: verifies the signature with the secret registered for `name`, answers
    500 for the first `fail_first[name]` requests, and holds `slow*` requests until
    `release` is set."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.fail_first: dict[str, int] = {}
        self.hits: list[Hit] = []
        self.release = threading.Event()
        self.app = FastAPI()
        self.app.post("/{name}")(self._handle)
        self._thread = AppThread(self.app)
        self.base = self._thread.url

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def of(self, name: str) -> list[Hit]:
        return [h for h in list(self.hits) if h.name == name]

    async def _handle(self, name: str, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("webhook-signature", "")
        hit = Hit(name, request.headers.get("webhook-id", ""), body, False)
        hit.verified = verify_signature(self.secrets.get(name, ""), header, body)
        self.hits.append(hit)
        if name.startswith("slow"):
            for _ in range(LIMIT_S * 50):  # poll: a threading.Event wait would block the loop
                if self.release.is_set():
                    break
                await asyncio.sleep(0.02)
        if not hit.verified:
            hit.answered = 400
        elif self.fail_first.get(name, 0) > 0:
            self.fail_first[name] -= 1
            hit.answered = 500
        else:
            hit.answered = 200
        return Response(status_code=hit.answered)

    def __enter__(self) -> Receiver:
        self._thread.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._thread.__exit__(*exc)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(LIMIT_S * 100):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    return engine


@pytest.fixture
def business(engine: Engine) -> int:
    return BusinessStore(engine).list()[0]["id"]


@pytest.fixture
def store(engine: Engine) -> WebhookStore:
    return WebhookStore(engine)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
async def make_dispatcher(
    store: WebhookStore,
) -> AsyncIterator[Callable[..., WebhookDispatcher]]:
    made: list[WebhookDispatcher] = []

    def make(**kwargs: float) -> WebhookDispatcher:
        kwargs.setdefault("base_delay_s", 0.01)
        d = WebhookDispatcher(store, **kwargs)  # type: ignore[arg-type]
        d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        await d.aclose(grace_s=0)


def add(store: WebhookStore, receiver: Receiver, business: int, name: str, events=()) -> int:  # type: ignore[no-untyped-def]
    endpoint_id, secret = store.add_endpoint(business, receiver.url(name), list(events))
    receiver.secrets[name] = secret
    return endpoint_id


async def test_event_is_delivered_signed(store, receiver, business, make_dispatcher) -> None:
    endpoint = add(store, receiver, business, "crm")
    dispatcher = make_dispatcher()
    when = datetime(2030, 5, 7, 9, 0, tzinfo=UTC)
    event_id = dispatcher.publish(business, "booking.created", {"booking_id": 7, "at": when})
    await dispatcher.drain()
    [hit] = receiver.of("crm")
    assert hit.verified and hit.event_id == event_id
    payload = hit.payload
    assert payload["id"] == event_id and payload["type"] == "booking.created"
    assert payload["business_id"] == business
    assert payload["data"] == {"booking_id": 7, "at": when.isoformat()}
    assert datetime.fromisoformat(payload["created_at"]).tzinfo is not None
    [attempt] = store.attempts(event_id)
    assert attempt["endpoint_id"] == endpoint and attempt["attempt"] == 1
    assert attempt["status_code"] == 200 and attempt["delivered"] and attempt["error"] is None


async def test_server_errors_are_retried_until_delivered(
    store, receiver, business, make_dispatcher
) -> None:
    add(store, receiver, business, "flaky")
    receiver.fail_first["flaky"] = 2
    dispatcher = make_dispatcher(max_attempts=5)
    event_id = dispatcher.publish(business, "call.completed", {"call_sid": "CA1"})
    await dispatcher.drain()
    attempts = store.attempts(event_id)
    assert [(a["attempt"], a["status_code"], a["delivered"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert attempts[0]["error"] == "HTTP 500"
    hits = receiver.of("flaky")
    assert [h.answered for h in hits] == [500, 500, 200]
    assert all(h.verified and h.event_id == event_id for h in hits)  # same id on every retry


async def test_gives_up_after_max_attempts(store, receiver, business, make_dispatcher) -> None:
    add(store, receiver, business, "down")
    receiver.fail_first["down"] = 100
    dispatcher = make_dispatcher(max_attempts=3)
    event_id = dispatcher.publish(business, "message.created", {"message_id": 1})
    await dispatcher.drain()
    attempts = store.attempts(event_id)
    assert [(a["attempt"], a["status_code"], a["delivered"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 500, False),
    ]


async def test_slow_and_dead_endpoints_do_not_hold_up_others(
    store, receiver, business, make_dispatcher
) -> None:
    slow = add(store, receiver, business, "slow")
    healthy = add(store, receiver, business, "healthy")
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    dead, _ = store.add_endpoint(business, dead_url, [])
    # A timeout longer than the test: the slow receiver answers only when released.
    dispatcher = make_dispatcher(timeout_s=LIMIT_S * 2, max_attempts=3)

    event_id = dispatcher.publish(business, "call.handed_off", {"call_sid": "CA2"})
    assert event_id is not None  # publish returned while nothing was delivered yet

    await wait_until(lambda: bool(receiver.of("healthy")), "delivery to the healthy endpoint")
    await wait_until(lambda: bool(receiver.of("slow")), "the slow endpoint was reached")
    # The slow receiver is still holding its request: the healthy one did not wait for it.
    assert receiver.of("slow")[0].answered is None
    assert not any(a["endpoint_id"] == slow for a in store.attempts(event_id))

    receiver.release.set()
    await dispatcher.drain()
    by_endpoint: dict[int, list[dict]] = {}
    for a in store.attempts(event_id):
        by_endpoint.setdefault(a["endpoint_id"], []).append(a)
    assert [a["delivered"] for a in by_endpoint[healthy]] == [True]
    assert [a["delivered"] for a in by_endpoint[slow]] == [True]
    assert [(a["attempt"], a["delivered"]) for a in by_endpoint[dead]] == [
        (1, False),
        (2, False),
        (3, False),
    ]
    assert all(a["status_code"] is None and "Connect" in a["error"] for a in by_endpoint[dead])


async def test_timeouts_are_logged_and_retried(store, receiver, business, make_dispatcher) -> None:
    slow = add(store, receiver, business, "slow-forever")  # held until the test ends
    healthy = add(store, receiver, business, "healthy")
    dispatcher = make_dispatcher(timeout_s=0.2, max_attempts=3)
    first = dispatcher.publish(business, "booking.created", {"booking_id": 1})
    second = dispatcher.publish(business, "call.completed", {"call_sid": "CA3"})
    await dispatcher.drain()
    for event_id in (first, second):
        attempts = store.attempts(event_id)
        timed_out = [a for a in attempts if a["endpoint_id"] == slow]
        assert [a["attempt"] for a in timed_out] == [1, 2, 3]
        assert all(not a["delivered"] and "timed out" in a["error"] for a in timed_out)
        assert [a["delivered"] for a in attempts if a["endpoint_id"] == healthy] == [True]


async def test_only_subscribed_endpoints_of_that_business(
    engine, store, receiver, business, make_dispatcher
) -> None:
    other = BusinessStore(engine).add("Other HVAC", "+15550100999", "UTC")
    add(store, receiver, business, "all")
    add(store, receiver, business, "bookings", ["booking.created"])
    add(store, receiver, business, "handoffs", ["call.handed_off", "call.completed"])
    off = add(store, receiver, business, "disabled")
    store.set_active(off, False)
    add(store, receiver, other, "other")
    dispatcher = make_dispatcher()

    booking = dispatcher.publish(business, "booking.created", {"booking_id": 1})
    completed = dispatcher.publish(business, "call.completed", {"call_sid": "CA4"})
    message = dispatcher.publish(business, "message.created", {"message_id": 2})
    await dispatcher.drain()

    def got(name: str) -> list[str]:
        return sorted(h.event_id for h in receiver.of(name))

    assert got("all") == sorted([booking, completed, message])
    assert got("bookings") == [booking]
    assert got("handoffs") == [completed]
    assert got("disabled") == [] and got("other") == []
    assert all(h.verified for h in receiver.hits)


async def test_publish_from_another_thread(store, receiver, business, make_dispatcher) -> None:
    add(store, receiver, business, "crm")
    dispatcher = make_dispatcher()
    event_id = await asyncio.to_thread(
        dispatcher.publish, business, "message.created", {"message_id": 3}
    )
    await wait_until(lambda: bool(receiver.of("crm")), "delivery of a cross-thread publish")
    await dispatcher.drain()
    assert receiver.of("crm")[0].event_id == event_id


async def test_bad_events_are_dropped_not_raised(
    store, receiver, business, make_dispatcher
) -> None:
    add(store, receiver, business, "crm")
    dispatcher = make_dispatcher()
    assert dispatcher.publish(business, "booking.deleted", {}) is None
    assert dispatcher.publish(business, "booking.created", {"x": object()}) is None
    await dispatcher.drain()
    assert receiver.hits == []


def test_verify_signature() -> None:
    secret, body, t = "whsec_test", b'{"id":"e1","type":"call.completed"}', 1_900_000_000
    header = sign(secret, body, timestamp=t)
    assert verify_signature(secret, header, body, now=t + 10)
    assert verify_signature(secret, header, body.decode(), now=t - 10)
    assert not verify_signature(secret, header, body.replace(b"e1", b"e2"), now=t)  # tampered
    assert not verify_signature(secret, header, body, now=t + 301)  # stale
    assert not verify_signature("whsec_other", header, body, now=t)
    forged_t = header.replace(f"t={t}", f"t={t + 60}")  # the timestamp is signed too
    assert not verify_signature(secret, forged_t, body, now=t + 60)
    rotated = f"t={t},v1={'0' * 64},{header.split(',')[1]}"
    assert verify_signature(secret, rotated, body, now=t)
    for malformed in ("", "t=abc,v1=00", f"t={t}", "v1=00", "garbage", f"t={t},v1=é"):
        assert not verify_signature(secret, malformed, body, now=t)


def test_store_rejects_bad_endpoints(store, business) -> None:
    with pytest.raises(ValueError):
        store.add_endpoint(business, "ftp://crm.example.com/hook", [])
    with pytest.raises(ValueError):
        store.add_endpoint(business, "https://crm.example.com/hook", ["booking.deleted"])
    with pytest.raises(LookupError):
        store.add_endpoint(9999, "https://crm.example.com/hook", [])
    _, secret = store.add_endpoint(business, "https://crm.example.com/hook", [])
    _, other_secret = store.add_endpoint(business, "https://crm.example.com/hook2", [])
    assert secret.startswith("whsec_") and len(secret) > 40 and secret != other_secret


async def test_a_worker_shutting_down_parks_its_retries_and_another_delivers_them(
    store, receiver, business
) -> None:
    """A deployment's rolling restart: the CRM is failing while a worker drains. Its
    unfinished deliveries go to the database, not to nowhere; the next worker delivers
    them with the same event id, counting on from the attempts already made."""
    add(store, receiver, business, "flaky")
    receiver.fail_first["flaky"] = 1
    leaving = WebhookDispatcher(store, base_delay_s=60.0, max_attempts=5)  # retry far off
    leaving.start()
    event_id = leaving.publish(business, "booking.created", {"booking_id": 9})
    await wait_until(lambda: len(store.attempts(event_id)) == 1, "the first attempt")
    queued_id = leaving.publish(business, "call.completed", {"call_sid": "CA9"})
    await leaving.aclose(grace_s=0)  # the retry and the queued event are both unfinished

    assert [h.answered for h in receiver.of("flaky")] == [500]
    staying = WebhookDispatcher(store, base_delay_s=0.01, resume_every_s=0.05)
    staying.start()
    try:
        await wait_until(lambda: len(receiver.of("flaky")) == 3, "parked deliveries resumed")
        await wait_until(lambda: not staying._deliveries, "deliveries finished")
    finally:
        await staying.aclose(grace_s=0)
    assert [(a["attempt"], a["delivered"]) for a in store.attempts(event_id)] == [
        (1, False),
        (2, True),
    ]
    assert [(a["attempt"], a["delivered"]) for a in store.attempts(queued_id)] == [(1, True)]
    resent = {h.event_id for h in receiver.of("flaky")[1:]}
    assert resent == {event_id, queued_id}
    assert all(h.verified for h in receiver.of("flaky"))
    assert store.take_parked() == []  # each parked delivery was taken once


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_parked_deliveries_are_taken_by_one_worker_each(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    from storage.webhook_store import Parked
    from tests.pg_support import postgresql_database

    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path}/parked.db"
        else:
            url = stack.enter_context(postgresql_database())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        upgrade(engine)
        store = WebhookStore(engine)
        biz = BusinessStore(engine).list()[0]["id"]
        endpoint, _ = store.add_endpoint(biz, "http://127.0.0.1:9/hook", [])
        store.park(
            [Parked(endpoint, biz, f"ev{i}", "call.completed", b"{}", 1) for i in range(200)]
        )
        with ThreadPoolExecutor(4) as pool:
            batches = list(pool.map(lambda _: store.take_parked(limit=7), range(60)))
        taken = [p.event_id for batch in batches for p in batch]
        assert sorted(taken) == sorted(f"ev{i}" for i in range(200))  # all, none twice


def test_a_parked_delivery_no_worker_took_up_is_dropped_after_a_day(
    store, business, engine
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from storage.retention import purge
    from storage.webhook_store import Parked

    endpoint, _ = store.add_endpoint(business, "http://127.0.0.1:9/hook", [])
    store.park([Parked(endpoint, business, "ev-old", "call.completed", b'{"n":1}', 2)])
    assert purge(engine, None)["totals"]["parked_webhooks"] == 0  # a fresh one waits
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    assert purge(engine, None, now=later)["totals"]["parked_webhooks"] == 1
    assert store.take_parked() == []
