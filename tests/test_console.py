"""The dispatcher console in a real headless browser (Debian's chromium driven by
Playwright), against a real server with the speech models: sign-in, history, bookings,
messages, and a live emergency call placed over the WebSocket that ends up as a handoff
card a dispatcher claims. Business B's user never sees business A's calls.

Screenshots go to test-artifacts/ (gitignored)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, update

from storage.audit import AuditLog
from storage.businesses import BusinessStore
from storage.calls import CallStore, FinishedCall, SegmentRecord
from storage.claims import Claim, ClaimStore
from storage.db import make_engine, upgrade
from storage.models import Call
from storage.reception import ReceptionStore
from storage.users import UserStore
from tests.api_support import add_recording
from tests.conftest import AUDIO, ROOT, require_service
from tests.console_support import (
    ConsoleServer,
    SseClient,
    TrackingBus,
    console_app,
    tracking_bus,
    wait_for,
)
from tests.pg_support import KINDS, database_url
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import caller_turn, wait_for_answer
from voice_agent.replay.peer import connect_stream, post_signed, ring
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker

try:
    from playwright.async_api import async_playwright, expect

    # Each expectation ends as soon as the page shows it; 5 s (the default) is too short for
    # a loaded machine transcribing a turn or a browser rendering an update.
    expect.set_options(timeout=30_000)
except ImportError:  # the browser fixture says what is missing (a failure in CI)
    async_playwright = expect = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

A_LINE, B_LINE = "+15550100200", "+15550100300"
CALLER = "+15555550123"  # the live call's caller: in no seeded call
H1, H2 = (f"CA{'c' * 31}{i}" for i in (1, 2))
B1 = f"CA{'d' * 31}1"


@dataclass
class World:
    app: FastAPI
    url: str
    settings: Settings
    engine: Engine
    bus: TrackingBus
    b_id: int
    tokens: dict[str, str]  # "ann" (A dispatcher), "al" (A dispatcher), "bo" (B owner)
    user_ids: dict[str, int]
    messages: dict[str, int]

    def request(self, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        """Blocking, also from async tests: the server runs in a thread of its own."""
        auth = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.request(method, self.url + path, headers=auth, timeout=10, **kw)

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return self.request(who, "GET", path, **kw)

    def post(self, who: str, path: str) -> httpx.Response:
        return self.request(who, "POST", path)


# The caller's ceiling-leak turn as Whisper writes it: any of its distinctive words will do.
LEAK_WORDS = re.compile(r"ceiling|water|pouring", re.I)


def add_finished_call(
    engine: Engine,
    sid: str,
    business: int,
    caller: str,
    line: str,
    started: datetime,
    outcome: str,
    segments: list[SegmentRecord],
) -> None:
    store = CallStore(engine)
    store.open_call(sid, business, caller, line)
    with engine.begin() as conn:
        conn.execute(update(Call).where(Call.call_sid == sid).values(started_at=started))
    ended = started + timedelta(seconds=80)
    store.finalize(FinishedCall(sid, "MZ" + sid[2:], ended, outcome, segments=segments))


def seed(engine: Engine) -> tuple[int, dict[str, int]]:
    b_id = BusinessStore(engine).add("Sparks Electric", B_LINE, "America/Chicago")
    now = datetime.now(UTC).replace(microsecond=0)
    agent, caller = "agent", "caller"
    add_finished_call(engine, H1, 1, "+15555550101", A_LINE, now - timedelta(days=2), "booked", [
        SegmentRecord(agent, "Thanks for calling Bluebird Plumbing, how can I help?", 0, 2500),
        SegmentRecord(caller, "My kitchen sink is clogged.", 3000, 4500),
        SegmentRecord(agent, "I can book a visit for that. What name and address should I use?",
                      5000, 7000, interrupted=True, heard_text="I can book a visit for that."),
        SegmentRecord(caller, "Maria Lopez, 1180 Birch Avenue.", 6500, 9000),
        SegmentRecord(agent, "Thanks Maria, you're booked for tomorrow.", 9500, 11000),
    ])  # fmt: skip
    yesterday = now - timedelta(days=1)
    quote = [SegmentRecord(caller, "I need a quote.", 0, 1500)]
    add_finished_call(engine, H2, 1, "+15555550102", A_LINE, yesterday, "message_taken", quote)
    buzz = [SegmentRecord(caller, "Sparks, my panel buzzes.", 0, 1500)]
    add_finished_call(engine, B1, b_id, "+15555550199", B_LINE, yesterday, "booked", buzz)
    reception = ReceptionStore(engine)
    for business, sid, name in [(1, H1, "Maria Lopez"), (b_id, B1, "Bo Customer")]:
        when = now + timedelta(days=1, hours=2)
        fields = {"scheduled_for": when, "duration_minutes": 120, "service": "drain cleaning",
                  "name": name, "phone": "+15555550101", "address": "1180 Birch Avenue",
                  "problem": "clogged sink"}  # fmt: skip
        assert reception.book(business, sid, 10, (when, when + timedelta(hours=2)), fields)
    note = {"name": "Sam Reed", "callback_number": "+15555550102", "reason": "water heater quote"}
    messages = {
        H2: reception.take_message(1, H2, note),
        B1: reception.take_message(b_id, B1, {**note, "name": "Bea Sparks"}),
    }
    return b_id, messages


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("console")
    settings = Settings(
        data_dir=data, twilio_auth_token="test-auth-token-1234", silence_prompt_ms=60_000
    )
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    b_id, messages = seed(engine)
    users = UserStore(engine)
    tokens, user_ids = {}, {}
    for who, business, role, name in [
        ("ann", 1, "dispatcher", "Ann Dispatcher"),
        ("al", 1, "dispatcher", "Al Dispatcher"),
        ("bo", b_id, "owner", "Bo Owner"),
    ]:
        user_ids[who], tokens[who] = users.add(business, role, name)
    app = console_app(settings)  # with the speech models: the live test places a real call
    add_recording(app.state.services.recordings, H1)
    with ConsoleServer(app) as url:
        bus = tracking_bus(app)
        yield World(app, url, settings, engine, bus, b_id, tokens, user_ids, messages)
    engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Path:
    if async_playwright is None:
        require_service("Playwright for Python", "pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        require_service("Chromium at /usr/bin/chromium", "apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Tab:
    """A page in a fresh browser context; script errors and CSP violations are kept."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"),
        )

    async def sign_in(self, token: str) -> None:
        await self.page.fill("#token", token)
        await self.page.click("#sign-in-form button[type=submit]")
        await expect(self.page.locator("#app")).to_be_visible()
        await expect(self.page.locator("#feed-status")).to_have_attribute("data-state", "live")

    async def tab(self, name: str) -> None:
        await self.page.click(f'[role=tab][data-tab="{name}"]')
        await expect(self.page.locator(f"#tab-{name}")).to_be_visible()


class Tabs:
    """Opens consoles in fresh browser contexts; the fixture closes them all."""

    def __init__(self, browser: Any, world: World) -> None:
        self.browser, self.world = browser, world
        self.opened: list[Tab] = []

    async def open(self, viewport: dict[str, int]) -> Tab:
        context = await self.browser.new_context(viewport=viewport)
        tab = Tab(await context.new_page())
        self.opened.append(tab)
        await tab.page.goto(self.world.url + "/console")
        return tab

    async def signed_in(self, who: str, viewport: dict[str, int]) -> Tab:
        tab = await self.open(viewport)
        await tab.sign_in(self.world.tokens[who])
        return tab


@pytest.fixture
async def tabs(browser: Any, world: World) -> AsyncIterator[Tabs]:
    opened = Tabs(browser, world)
    yield opened
    for tab in opened.opened:  # closes their live feeds too
        await tab.page.context.close()


async def screenshot(tab: Tab, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await tab.page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# --- sign-in ----------------------------------------------------------------------------


async def test_sign_in_keeps_the_token_in_the_tab_only(tabs: Tabs, world: World) -> None:
    tab = await tabs.open(PHONE)
    page = tab.page
    response = await page.request.get(world.url + "/console")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    await page.fill("#token", "va_not-a-real-token")
    await page.click("#sign-in-form button[type=submit]")
    await expect(page.locator("#sign-in-error")).to_contain_text("not accepted")
    assert await page.evaluate("sessionStorage.length") == 0
    assert [e for e in tab.errors if "401" not in e] == []  # the refused token: a 401
    tab.errors.clear()

    await tab.sign_in(world.tokens["ann"])
    await expect(page.locator("#business-name")).to_contain_text("Bluebird Plumbing")
    await expect(page.locator("#who")).to_contain_text("Ann Dispatcher (dispatcher)")
    assert page.url == world.url + "/console"  # the form never submits: no token in a URL
    assert await page.input_value("#token") == ""

    await page.reload()  # the tab remembers it
    await expect(page.locator("#feed-status")).to_have_attribute("data-state", "live")
    await page.click("#sign-out")
    await expect(page.locator("#sign-in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    assert tab.errors == []


# --- history ----------------------------------------------------------------------------


async def test_history_bookings_and_inbox(tabs: Tabs, world: World) -> None:
    tab = await tabs.signed_in("ann", PHONE)
    page = tab.page
    await tab.tab("calls")
    rows = page.locator("#call-list [data-call-sid]")
    await expect(rows.first).to_be_visible()
    listed = await rows.evaluate_all("rows => rows.map(r => r.dataset.callSid)")
    assert H1 in listed and H2 in listed and B1 not in listed

    await page.fill("#call-filters [name=caller]", "+15555550101")
    await page.click("#call-filters button[type=submit]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-call-sid", H1)
    await page.fill("#call-filters [name=caller]", "")
    await page.select_option("#call-filters [name=outcome]", "message_taken")
    await page.click("#call-filters button[type=submit]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-call-sid", H2)
    await page.select_option("#call-filters [name=outcome]", "")
    await page.click("#call-filters button[type=submit]")

    # One call: its transcript with the interrupted line marked, and its recording.
    await page.click(f'#call-list [data-call-sid="{H1}"] button')
    detail = page.locator("#call-detail")
    await expect(detail).to_have_attribute("data-call-sid", H1)
    await expect(detail.locator(".line")).to_have_count(5)
    cut = detail.locator('.line[data-interrupted="true"]')
    await expect(cut).to_have_count(1)
    await expect(cut.locator(".tag")).to_have_text("interrupted")
    await expect(cut.locator("del.unheard")).to_have_text(" What name and address should I use?")
    await expect(detail.locator("text=Booking:")).to_be_visible()
    audio = detail.locator("audio")
    await expect(audio).to_have_count(1)
    await detail.locator(".player button").click()
    await expect(audio).to_have_attribute("data-loaded", "true")
    duration = await audio.evaluate(
        """a => new Promise((done, fail) => {
            a.addEventListener('loadedmetadata', () => done(a.duration));
            a.addEventListener('error', () => fail(String(a.error && a.error.code)));
            a.load();
        })"""
    )
    assert 1.0 < duration < 2.0, duration  # add_recording writes 1.5 s
    await screenshot(tab, "console-call-detail.png")

    # Bookings of the next days, and the inbox.
    await tab.tab("bookings")
    await expect(page.locator("#booking-list .booking")).to_have_count(1)
    await expect(page.locator("#booking-list")).to_contain_text("Maria Lopez")
    await tab.tab("messages")
    message = page.locator(f'[data-message-id="{world.messages[H2]}"]')
    await expect(message).to_contain_text("Sam Reed")
    await expect(page.locator("#message-list .message")).to_have_count(1)  # not B's
    await message.locator("button.handle").click()
    await expect(message).to_have_count(0)
    handled = world.get("ann", "/api/messages", params={"handled": "true"}).json()["items"]
    assert [m["id"] for m in handled] == [world.messages[H2]]
    await page.check("#message-filters [name=all]")
    await expect(message).to_contain_text("handled")
    assert tab.errors == []

    # Business B's console lists B's call only.
    other = await tabs.signed_in("bo", DESKTOP)
    await other.tab("calls")
    b_rows = other.page.locator("#call-list [data-call-sid]")
    await expect(b_rows).to_have_count(1)
    await expect(b_rows.first).to_have_attribute("data-call-sid", B1)
    await other.tab("bookings")
    await expect(other.page.locator("#booking-list")).to_contain_text("Bo Customer")
    await expect(other.page.locator("#booking-list")).not_to_contain_text("Maria Lopez")


async def test_the_console_follows_again_when_the_server_ends_its_stream(
    tabs: Tabs, world: World
) -> None:
    services = world.app.state.services
    max_age_s, services.sse_max_age_s = services.sse_max_age_s, 1.0  # a stream lasts 1 s
    try:
        tab = await tabs.signed_in("ann", PHONE)
        before = world.bus.opened[1]
        await wait_for(lambda: world.bus.opened[1] >= before + 2, "two planned reconnects")
    finally:
        services.sse_max_age_s = max_age_s
    a = BusinessStore(world.engine).by_id(1)
    assert a is not None
    await wait_for(lambda: world.bus.open[1] >= 1, "the console to follow again")
    message = {"id": 10**6, "name": "Rita Reconnect", "reason": "a quote"}
    world.app.state.services.notifier.publish(a, "message.created", {"message": message})
    await expect(tab.page.locator("#activity")).to_contain_text("Rita Reconnect")
    await expect(tab.page.locator("#feed-status")).to_have_attribute("data-state", "live")
    assert tab.errors == []


# --- claims (the API behind the Claim button) ----------------------------------------------


async def test_claims_are_first_come_first_served_within_the_business(world: World) -> None:
    reception = ReceptionStore(world.engine)
    mine = reception.hand_off(1, H2, None, "caller_asked", "wants a person")
    theirs = reception.hand_off(world.b_id, B1, None, "emergency", "panel sparks")
    for path in (f"/api/handoffs/{mine}/claim", "/api/console/handoffs", "/api/console/context"):
        method = "POST" if path.endswith("claim") else "GET"
        r = world.request(None, method, path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")

    async with (
        SseClient(world.url, world.tokens["ann"]) as for_a,
        SseClient(world.url, world.tokens["bo"]) as for_b,
    ):
        assert (await for_a.frame()).comments == ["connected"]
        assert (await for_b.frame()).comments == ["connected"]
        first = world.post("al", f"/api/handoffs/{mine}/claim")
        assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
        claim = first.json()
        assert claim["handoff_id"] == mine and claim["call_sid"] == H2
        assert claim["claimed_by"] == {"user_id": world.user_ids["al"], "name": "Al Dispatcher"}
        event = await for_a.event()
        assert (event.event, event.data) == (
            "handoff.claimed",
            {"type": "handoff.claimed", "call_sid": H2, "data": claim},
        )
        again = world.post("al", f"/api/handoffs/{mine}/claim")
        assert (again.status_code, again.json()) == (200, claim)  # the same claim, no event
        late = world.post("ann", f"/api/handoffs/{mine}/claim")
        assert late.status_code == 409
        assert late.json() == {"detail": "already claimed by Al Dispatcher", "claim": claim}
        for who, handoff in [("bo", mine), ("ann", theirs), ("ann", 10**6)]:
            gone = world.post(who, f"/api/handoffs/{handoff}/claim")
            assert (gone.status_code, gone.json()) == (404, {"detail": "no such handoff"})
        with pytest.raises(TimeoutError):
            await for_b.event(timeout_s=1.0)  # B heard nothing of A's claim
        with pytest.raises(TimeoutError):
            await for_a.event(timeout_s=0.5)  # nor A of the refused ones

    board = {h["id"]: h for h in world.get("ann", "/api/console/handoffs").json()}
    assert mine in board and theirs not in board
    assert board[mine]["claim"] == claim and board[mine]["caller"] == "+15555550102"
    assert board[mine]["reason"] == "caller_asked" and board[mine]["call_status"] == "completed"
    b_board = world.get("bo", "/api/console/handoffs").json()
    assert [(h["id"], h["claim"]) for h in b_board] == [(theirs, None)]
    assert world.post("bo", f"/api/handoffs/{theirs}/claim").status_code == 200

    [entry] = [e for e in AuditLog(world.engine).entries(1) if e["action"] == "claim_handoff"]
    assert (entry["actor"], entry["user_id"], entry["target"]) == (
        f"user:{world.user_ids['al']}",
        world.user_ids["al"],
        f"handoff:{mine}",
    )
    assert entry["detail"] == {"call_sid": H2}

    context = world.get("bo", "/api/console/context").json()
    assert context == {
        "user": {"id": world.user_ids["bo"], "name": "Bo Owner", "role": "owner"},
        "business": {
            "id": world.b_id,
            "name": "Sparks Electric",
            "timezone": "America/Chicago",
            "line": B_LINE,
        },
    }


@pytest.fixture(params=KINDS)
def claim_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of each kind (PostgreSQL: a throwaway one on the local server)."""
    with database_url(request.param, tmp_path) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def test_concurrent_claims_have_one_winner(claim_db: Engine) -> None:
    CallStore(claim_db).open_call(H1, 1, "+15555550101", A_LINE)
    handoff = ReceptionStore(claim_db).hand_off(1, H1, None, "emergency", "burst pipe")
    users = [UserStore(claim_db).add(1, "dispatcher", f"d{i}")[0] for i in range(8)]
    store, start = ClaimStore(claim_db), threading.Barrier(len(users))

    def attempt(user_id: int) -> tuple[Claim, bool] | None:
        start.wait()
        return store.claim(1, handoff, user_id)

    with ThreadPoolExecutor(len(users)) as pool:
        results = [r for r in pool.map(attempt, users) if r is not None]
    assert len(results) == len(users)
    winners = [claim for claim, made in results if made]
    assert len(winners) == 1 and winners[0].user_id in users
    assert all(claim == winners[0] for claim, _ in results)
    assert winners[0].call_sid == H1 and winners[0].name == f"d{users.index(winners[0].user_id)}"
    entries = [e for e in AuditLog(claim_db).entries(1) if e["action"] == "claim_handoff"]
    assert len(entries) == 1, entries
    assert store.claim(2, handoff, users[0]) is None  # not that business's handoff
    assert store.claim(1, handoff + 1, users[0]) is None


# --- live -------------------------------------------------------------------------------


async def test_a_live_emergency_call_is_handed_off_and_claimed(tabs: Tabs, world: World) -> None:
    ann = await tabs.signed_in("ann", PHONE)  # on her phone
    al = await tabs.signed_in("al", DESKTOP)  # a second dispatcher of A
    bo = await tabs.signed_in("bo", DESKTOP)  # business B
    signer = SignatureChecker(world.settings.auth_token())
    async with httpx.AsyncClient(timeout=30) as http:
        ringing = await ring(http, signer, world.url, CALLER, A_LINE)
        sid = ringing.call_sid
        live_card = ann.page.locator(f'#live-calls [data-call-sid="{sid}"]')
        async with connect_stream(ringing, signer, fast=True) as peer:
            assert await wait_for_answer(peer, 30), "the agent greeted the caller"
            # The transcript grows on the page while the call is on (call.started and
            # call.transcript from the call session): first the greeting.
            await expect(live_card.locator(".caller-number")).to_have_text(CALLER)
            await expect(live_card.locator(".line.agent").first).to_contain_text("Bluebird")
            assert not peer.closed.is_set(), "the call was still on"
            leak = load_turn(AUDIO / "ceiling-leak.wav")
            await caller_turn(peer, "ceiling-leak.wav", leak, 30)
            await asyncio.wait_for(peer.closed.wait(), 30)  # a handoff closes the stream
        assert ringing.action is not None
        ended = {**ringing.params, "CallStatus": "in-progress"}
        assert "<Dial" in await post_signed(http, signer, ringing.action, ended)
    await expect(live_card.locator(".line.caller").first).to_contain_text(LEAK_WORDS)
    await expect(live_card).to_have_attribute("data-state", "ended", timeout=20_000)
    await expect(live_card.locator(".pill")).to_contain_text("Handed off")  # call.ended

    # The handoff card: caller, reason, summary (the caller's words), and a Claim button.
    [stored] = [
        h for h in world.get("ann", "/api/handoffs").json()["items"] if h["call_sid"] == sid
    ]
    card = ann.page.locator(f'#handoffs [data-handoff-call="{sid}"]')
    await expect(card).to_be_visible(timeout=20_000)
    await expect(card.locator(".caller-number")).to_contain_text(CALLER)
    await expect(card.locator(".reason")).to_contain_text(stored["reason"].replace("_", " "))
    await expect(card.locator(".summary")).to_have_text(stored["summary"])
    assert LEAK_WORDS.search(stored["summary"]), stored["summary"]
    so_far = card.locator(".transcript .line")  # the transcript so far, on the card
    await expect(so_far.first).to_contain_text("Bluebird")
    await expect(card.locator(".transcript .line.caller").first).to_contain_text(LEAK_WORDS)
    claim = card.locator("button.claim")
    await expect(claim).to_be_enabled()
    await claim.click()
    await expect(card).to_have_attribute("data-claimed", "true")
    await expect(card.locator(".claim-state")).to_contain_text("Claimed by you")
    # Al's console learns it at once (handoff.claimed on the live feed).
    al_card = al.page.locator(f'#handoffs [data-handoff-call="{sid}"]')
    await expect(al_card.locator(".claim-state")).to_contain_text("Claimed by Ann Dispatcher")
    await expect(al_card.locator("button.claim")).to_be_hidden()
    await screenshot(ann, "console-handoff-claimed.png")
    # The ended call is in the history already (call.ended refreshed it), stored transcript too.
    await ann.tab("calls")
    row = ann.page.locator(f'#call-list [data-call-sid="{sid}"]')
    await expect(row).to_contain_text("Handed off")
    await row.locator("button").click()
    detail = ann.page.locator("#call-detail")
    await expect(detail.locator(".line.caller").first).to_contain_text(LEAK_WORDS)
    await expect(detail.locator("text=Handoff:")).to_be_visible()

    # The claim is recorded, first come first served, and only within the business.
    board = world.get("ann", "/api/console/handoffs").json()
    [entry] = [h for h in board if h["call_sid"] == sid]
    assert entry["claim"]["claimed_by"] == {
        "user_id": world.user_ids["ann"],
        "name": "Ann Dispatcher",
    }
    again = world.post("ann", f"/api/handoffs/{stored['id']}/claim")
    assert again.status_code == 200 and again.json()["claimed_by"]["name"] == "Ann Dispatcher"
    late = world.post("al", f"/api/handoffs/{stored['id']}/claim")
    assert late.status_code == 409 and late.json()["detail"] == "already claimed by Ann Dispatcher"
    foreign = world.post("bo", f"/api/handoffs/{stored['id']}/claim")
    assert (foreign.status_code, foreign.json()) == (404, {"detail": "no such handoff"})

    # Business B's console never saw any of it.
    await bo.tab("calls")
    await bo.page.click("#call-filters button[type=submit]")
    await expect(bo.page.locator("#call-list [data-call-sid]")).to_have_count(1)
    html = await bo.page.content()
    assert sid not in html
    assert CALLER not in html
    assert "ceiling" not in html.lower()
    assert await bo.page.locator(f'[data-handoff-call="{sid}"]').count() == 0
    assert [b for b, e in world.bus.published if e.get("call_sid") == sid] == [1] * len(
        world.bus.events_of(sid)
    ), "every event of A's call went to A's channel"
    kinds = {e["type"] for e in world.bus.events_of(sid)}
    assert {"call.started", "call.transcript", "call.handoff", "call.ended"} <= kinds, kinds
    for tab in (ann, al, bo):
        assert tab.errors == [], tab.errors
