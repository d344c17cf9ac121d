"""Signed CRM webhooks: events go out in the background, retried with backoff, every
attempt logged. `publish` only enqueues, so a slow or dead CRM never delays a call.

Receivers check `Webhook-Signature: t=<unix ts>,v1=<hex>` where v1 is
HMAC-SHA256(secret, f"{t}.{raw body}"): the timestamp is signed too, so a captured request
cannot be replayed later (see `verify_signature`). `Webhook-Id` (the event id) is the same on
every retry; receivers use it to drop duplicates.

A worker shutting down parks what it has not delivered yet (queued, or waiting for a retry)
in the database; every worker takes parked deliveries up every `resume_every_s` and goes on
counting their attempts, so a deployment's rolling restart drops no event."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx

from storage.webhook_store import EVENTS, Endpoint, Parked, WebhookStore

__all__ = ["EVENTS", "WebhookDispatcher", "sign", "verify_signature"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Webhook-Signature"
ID_HEADER = "Webhook-Id"
T = TypeVar("T")
PER_ENDPOINT_CONCURRENCY = 4
PARK_TIMEOUT_S = 10.0  # one slow CRM can hold only this many connections


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Webhook-Signature` header value for this body."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes | str,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """For receivers: True if `header` signs exactly this raw body with this secret and its
    timestamp is within `tolerance_s` of now. Never raises on a malformed header."""
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            with contextlib.suppress(ValueError):
                timestamp = int(value)
        elif key == "v1":  # several v1 values are allowed, e.g. while a secret is rotated
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, raw).encode()
    return any(hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in candidates)


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass(frozen=True)
class _Event:
    id: str
    type: str
    business_id: int
    body: bytes  # serialized once: every endpoint and every retry signs the same bytes


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        timeout_s: float = 5.0,
        resume_every_s: float = 30.0,
    ) -> None:
        self._store = store
        self._own_http = http is None
        # No global connection cap: per-endpoint semaphores bound each CRM instead, so
        # many slow endpoints cannot starve a healthy one of pool slots.
        self._http = http or httpx.AsyncClient(limits=httpx.Limits(max_connections=None))
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.timeout_s = timeout_s
        self._queue: asyncio.Queue[_Event] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._worker: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._limits: defaultdict[int, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(PER_ENDPOINT_CONCURRENCY)
        )
        self._closed = False
        self.resume_every_s = resume_every_s
        self._attempts: dict[asyncio.Task[None], tuple[Endpoint, _Event, int]] = {}
        self._resumer: asyncio.Task[None] | None = None
        # Its own threads for the store: with the database unreachable each lookup may hang
        # until the connection gives up, and those must not use up the threads calls need.
        self._store_threads = ThreadPoolExecutor(2, thread_name_prefix="crm-webhooks-db")

    def start(self) -> None:
        """Start the background worker; call from the running loop (e.g. app lifespan)."""
        if self._worker is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._worker = self._loop.create_task(self._run(), name="crm-webhooks")
            self._resumer = self._loop.create_task(self._resume_parked(), name="crm-parked")

    def publish(self, business_id: int, event: str, data: dict[str, Any]) -> str | None:
        """Enqueue an event; returns its id at once. Safe to call from any thread. Errors are
        logged, never raised: a webhook must not break the call that caused it."""
        if self._closed:
            logger.warning("webhook dispatcher closed; dropped %s", event)
            return None
        if event not in EVENTS:
            logger.error("unknown webhook event %r; dropped", event)
            return None
        event_id = str(uuid.uuid4())
        envelope = {
            "id": event_id,
            "type": event,
            "created_at": datetime.now(UTC).isoformat(),
            "business_id": business_id,
            "data": data,
        }
        try:
            body = json.dumps(envelope, separators=(",", ":"), default=_json_default).encode()
        except (TypeError, ValueError):
            logger.exception("webhook %s data is not JSON; dropped", event)
            return None
        item = _Event(event_id, event, business_id, body)
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            # From another thread (e.g. code running in asyncio.to_thread): asyncio.Queue is
            # not thread-safe, so hand the item to the loop.
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        else:
            self._queue.put_nowait(item)  # before start(), events wait in the queue
        return event_id

    async def drain(self) -> None:
        """Wait until every published event has been delivered or given up (for tests)."""
        if self._worker is None:
            raise RuntimeError("start() the dispatcher first")
        await self._queue.join()
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Stop accepting events, give pending deliveries `grace_s`, then park the rest in
        the database for the other workers (or this one's next start)."""
        self._closed = True
        if self._worker is not None:
            if self._resumer is not None:
                self._resumer.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), grace_s)
            unfinished = [self._attempts[t] for t in self._deliveries if t in self._attempts]
            pending = [self._worker, *self._deliveries]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            try:  # bounded: a database that stopped answering must not hold the shutdown
                await asyncio.wait_for(self._park(unfinished), PARK_TIMEOUT_S)
            except TimeoutError:
                logger.error("database unreachable: %d webhook deliveries lost", len(unfinished))
        if self._own_http:
            await self._http.aclose()
        self._store_threads.shutdown(wait=False)

    async def _park(self, unfinished: list[tuple[Endpoint, _Event, int]]) -> None:
        queued: list[_Event] = []
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        try:
            for item in queued:  # never looked up: one parked delivery per endpoint
                endpoints = await self._db(self._store.endpoints_for, item.business_id, item.type)
                unfinished += [(endpoint, item, 0) for endpoint in endpoints]
            parked = [
                Parked(e.id, i.business_id, i.id, i.type, i.body, done) for e, i, done in unfinished
            ]
            await self._db(self._store.park, parked)
        except Exception:
            logger.exception("could not park %d webhook deliveries; they are lost", len(unfinished))
            return
        if parked:
            logger.info("parked %d webhook deliveries for the other workers", len(parked))

    async def _resume_parked(self) -> None:
        while not self._closed:
            try:
                taken = await self._db(self._store.take_parked)
                for parked in taken:
                    endpoint = await self._db(self._store.endpoint, parked.endpoint_id)
                    if endpoint is None:
                        continue  # removed or turned off since
                    item = _Event(parked.event_id, parked.event, parked.business_id, parked.body)
                    self._start_delivery(endpoint, item, parked.attempts_done)
            except Exception:
                logger.exception("could not take up parked webhook deliveries")
            await asyncio.sleep(self.resume_every_s)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                endpoints = await self._db(self._store.endpoints_for, item.business_id, item.type)
                for endpoint in endpoints:  # one task each: endpoints never wait on each other
                    self._start_delivery(endpoint, item, 0)
            except asyncio.CancelledError:
                self._queue.put_nowait(item)  # shutting down mid-lookup: aclose parks it
                raise
            except Exception:
                logger.exception("could not look up webhook endpoints for %s", item.type)
            finally:
                self._queue.task_done()

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_threads, fn, *args)

    def _start_delivery(self, endpoint: Endpoint, item: _Event, attempts_done: int) -> None:
        task = asyncio.create_task(self._deliver(endpoint, item, attempts_done))
        self._attempts[task] = (endpoint, item, attempts_done)
        self._deliveries.add(task)
        task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._attempts.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("webhook delivery crashed", exc_info=task.exception())

    async def _deliver(self, endpoint: Endpoint, item: _Event, attempts_done: int = 0) -> None:
        task = asyncio.current_task()
        for attempt in range(attempts_done + 1, self.max_attempts + 1):
            status, error = await self._post(endpoint, item)
            delivered = status is not None and 200 <= status < 300
            try:
                await self._db(
                    self._store.log_attempt,
                    endpoint.id,
                    item.id,
                    item.type,
                    attempt,
                    status,
                    error,
                    delivered,
                )
            except Exception:
                logger.exception("could not log webhook attempt for %s", item.id)
            if delivered:
                return
            if task in self._attempts:  # what a shutdown would park
                self._attempts[task] = (endpoint, item, attempt)
            if attempt < self.max_attempts:
                # Exponential backoff with jitter, so retries of many events do not stampede.
                delay = self.base_delay_s * 2 ** (attempt - 1) * random.uniform(1.0, 1.2)
                await asyncio.sleep(delay)
        logger.warning(
            "webhook %s %s to endpoint %d failed %d times; giving up",
            item.type,
            item.id,
            endpoint.id,
            self.max_attempts,
        )

    async def _post(self, endpoint: Endpoint, item: _Event) -> tuple[int | None, str | None]:
        # Signed per attempt: a retry after a long backoff still carries a fresh timestamp.
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "voice-agent-webhooks/1",
            ID_HEADER: item.id,
            SIGNATURE_HEADER: sign(endpoint.secret, item.body),
        }
        try:
            async with self._limits[endpoint.id]:
                # httpx's timeout is per phase (connect, each read...); asyncio.timeout also
                # caps the total, so a receiver that trickles bytes cannot hold a slot.
                async with asyncio.timeout(self.timeout_s):
                    resp = await self._http.post(
                        endpoint.url, content=item.body, headers=headers, timeout=self.timeout_s
                    )
        except TimeoutError:
            return None, f"timed out after {self.timeout_s:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}".rstrip(": ")
        if 200 <= resp.status_code < 300:
            return resp.status_code, None
        return resp.status_code, f"HTTP {resp.status_code}"
