"""Several workers behind a real HAProxy, on one PostgreSQL and one Redis: a call's
webhook, its stream and its dispatcher's live feed on three different workers; a worker
killed mid-call; a rolling restart under a load of calls."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from storage.calls import CallStore
from storage.models import Call, TranscriptSegment
from storage.reception import ReceptionStore
from storage.users import UserStore
from tests.cluster.topology import TOKEN, Cluster, Worker, cluster, wait_busy, wait_serving
from tests.conftest import AUDIO
from tests.console_support import SseClient
from voice_agent.drain import GOODBYE
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import TurnResult, caller_turn, wait_for_answer
from voice_agent.replay.peer import connect_stream, ring
from voice_agent.twilio.signatures import SignatureChecker

LINE = "+15550100200"
TURN_S = 90.0  # an answer's bound on a loaded machine: polled, not waited out
SHORT = ["hours-question.wav", "goodbye.wav"]
LONGER = ["water-heater.wav", "name-james.wav", "address-oak.wav", "goodbye.wav"]


@dataclass
class Placed:
    call_sid: str
    greeted: bool
    turns: list[TurnResult]
    closed_by_agent: bool
    close_code: int | None


async def place(
    public: str, turns: list[str], caller: str, webhook: Worker | None = None,
    stream: Worker | None = None, first_turn_done: asyncio.Event | None = None,
) -> Placed:  # fmt: skip
    """A call as Twilio places it through `public`, or with its webhook and its stream
    delivered to the given workers (signed for `public`, as the balancer passes them)."""
    signer = SignatureChecker(TOKEN)
    async with httpx.AsyncClient(timeout=60) as http:
        ringing = await ring(http, signer, public, caller, LINE, via=webhook and webhook.url)
    assert ringing.stream_url, ringing.twiml
    audio = [load_turn(AUDIO / t) for t in turns]
    async with connect_stream(ringing, signer, via=stream and stream.url) as peer:
        greeted = await wait_for_answer(peer, TURN_S)
        done: list[TurnResult] = []
        for name, mulaw in zip(turns, audio, strict=True):
            if peer.closed.is_set():
                break
            done.append(await caller_turn(peer, name, mulaw, TURN_S))
            if first_turn_done is not None:
                first_turn_done.set()
        if not peer.closed.is_set():  # the agent hangs up after the goodbye, once heard
            await asyncio.wait_for(peer.closed.wait(), TURN_S)
        return Placed(ringing.call_sid, greeted, done, peer.closed.is_set(), peer.close_code)


def stored(c: Cluster, call_sid: str) -> tuple[Call, list[TranscriptSegment]]:
    with c.engine.connect() as conn:
        call = conn.execute(select(Call).where(Call.call_sid == call_sid)).one()
        lines = conn.execute(
            select(TranscriptSegment).where(TranscriptSegment.call_id == call.id)
        ).all()
    return call, lines


async def eventually_stored(c: Cluster, call_sid: str, statuses: set[str]) -> Call:
    for _ in range(1200):
        call, _ = stored(c, call_sid)
        if call.status in statuses:
            return call
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_sid} still {call.status}, expected one of {statuses}")


def answered(p: Placed) -> bool:
    return p.greeted and bool(p.turns) and all(t.latency_ms is not None for t in p.turns)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(
        tmp_path_factory.mktemp("three"), ["a", "b", "c"], CALLS_PER_CALLER_LIMIT="3"
    ) as c:
        yield c


async def test_a_caller_s_calls_are_counted_across_workers(three: Cluster) -> None:
    """The limit (3 per caller per window) holds wherever each webhook lands."""
    signer = SignatureChecker(TOKEN)
    async with httpx.AsyncClient(timeout=60) as http:
        answers = [
            await ring(http, signer, three.balancer_url, "+15555550999", LINE, via=w.url)
            for w in (three.worker(n) for n in "abca")
        ]
    assert [a.stream_url is not None for a in answers] == [True, True, True, False]
    assert "<Hangup" in answers[3].twiml


async def test_a_handoff_is_claimed_once_across_workers(three: Cluster) -> None:
    """Three dispatchers claim one handoff at once, each through another worker: one
    claim is made, the others are told who has it."""
    CallStore(three.engine).open_call("CAclaimed", 1, "+15555550998", LINE)
    handoff = ReceptionStore(three.engine).hand_off(1, "CAclaimed", None, "emergency", "gas")
    users = UserStore(three.engine)
    tokens = [users.add(1, "dispatcher", f"d{n}")[1] for n in range(3)]

    async def claim(worker: Worker, token: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=60) as http:
            url = f"{worker.url}/api/handoffs/{handoff}/claim"
            return await http.post(url, headers={"Authorization": f"Bearer {token}"})

    answers = await asyncio.gather(
        *(claim(three.worker(n), t) for n, t in zip("abc", tokens, strict=True))
    )
    assert sorted(r.status_code for r in answers) == [200, 409, 409], [r.text for r in answers]
    [winner] = [r.json() for r in answers if r.status_code == 200]
    for lost in (r for r in answers if r.status_code == 409):
        assert winner["claimed_by"]["name"] in lost.text


async def test_a_call_s_webhook_stream_and_feed_on_three_workers(three: Cluster) -> None:
    """Webhook on a, stream on b, the dispatcher's feed on c, and the same through the
    balancer: every call answered and stored, every event seen on c."""
    a, b, c = (three.worker(n) for n in "abc")
    _, token = UserStore(three.engine).add(1, "dispatcher", "dee")
    async with SseClient(c.url, token) as feed:
        calls = await asyncio.gather(
            place(three.balancer_url, SHORT, "+15555550101", webhook=a, stream=b),
            place(three.balancer_url, SHORT, "+15555550102", webhook=b, stream=a),
            place(three.balancer_url, SHORT, "+15555550103"),
            place(three.balancer_url, SHORT, "+15555550104"),
        )
        wanted = {(p.call_sid, kind) for p in calls for kind in ("call.started", "call.ended")}
        seen: set[tuple[str, str]] = set()
        while not wanted <= seen:
            frame = await feed.frame(timeout_s=TURN_S)
            if frame.data:
                seen.add((frame.data.get("call_sid"), frame.data.get("type")))
    assert all(answered(p) for p in calls), calls
    for p in calls:
        call, lines = stored(three, p.call_sid)
        # What came of it is the policy's reading of the words: any outcome, but one.
        assert call.status == "completed" and call.outcome is not None, p.call_sid
        assert any(line.speaker == "caller" for line in lines)
    # The stream's worker holds the call (`owner` names its pid), not the webhook's.
    owners = [stored(three, p.call_sid)[0].owner.split(":")[1] for p in calls[:2]]
    assert owners == [str(b.proc.pid), str(a.proc.pid)]  # type: ignore[union-attr]


async def test_a_killed_worker_s_calls_are_closed_as_interrupted_and_others_go_on(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, ["a", "b"]) as two:
        a, b = two.worker("a"), two.worker("b")
        on_a_heard = asyncio.Event()
        doomed = [
            asyncio.create_task(
                place(two.balancer_url, LONGER, f"+1555555020{i}", a, a, on_a_heard)
            )
            for i in range(2)
        ]
        survivors = [
            asyncio.create_task(place(two.balancer_url, LONGER, f"+1555555030{i}", b, b))
            for i in range(2)
        ]
        await asyncio.wait_for(on_a_heard.wait(), TURN_S * 2)
        a.signal(signal.SIGKILL)  # mid-call: no drain, no goodbye, no record written
        await asyncio.to_thread(a.wait_exit)  # reaped, as its container or supervisor would
        lost = await asyncio.gather(*doomed)
        kept = await asyncio.gather(*survivors)

        # b's callers noticed nothing: every turn answered, stored as completed.
        assert all(answered(p) for p in kept), kept
        for p in kept:
            assert (await eventually_stored(two, p.call_sid, {"completed"})).outcome is not None
        # a's calls: the line dropped; b's reaper found them and closed them.
        assert all(p.close_code != 1000 for p in lost)
        for p in lost:
            call = await eventually_stored(two, p.call_sid, {"interrupted"})
            assert call.ended_at is not None and call.outcome is not None
            _, lines = stored(two, p.call_sid)
            assert any(line.speaker == "caller" for line in lines)  # said before the kill


async def test_a_rolling_restart_cuts_off_no_call(tmp_path: Path) -> None:
    """SIGTERM to each worker in turn, restarting it before the next, as a Deployment
    rolls, while calls keep coming through the balancer: none is cut off, none lost."""
    with cluster(tmp_path, ["a", "b"], DRAIN_TIMEOUT_S="300") as two:
        placed: list[Placed] = []
        rolling = asyncio.Event()

        async def lane(k: int) -> None:
            n = 0
            while not rolling.is_set() or n < 2:
                placed.append(await place(two.balancer_url, LONGER, f"+155555504{k}{n % 10}"))
                n += 1

        lanes = [asyncio.create_task(lane(k)) for k in range(3)]
        for worker in two.workers:  # calls in progress on both when the roll starts
            await asyncio.to_thread(wait_busy, worker)
        for worker in two.workers:
            worker.signal(signal.SIGTERM)
            code = await asyncio.to_thread(worker.wait_exit, 600)
            assert code == 0, worker.tail()
            assert "draining" in worker.tail(200)
            worker.start()
            await asyncio.to_thread(worker.wait_ready)
            await asyncio.to_thread(wait_serving, two, worker)
        rolling.set()
        await asyncio.gather(*lanes)

        assert len(placed) >= 6
        for p in placed:
            assert answered(p) and p.closed_by_agent and p.close_code == 1000, p
            call = await eventually_stored(two, p.call_sid, {"completed", "interrupted"})
            assert call.status == "completed", p.call_sid
            _, lines = stored(two, p.call_sid)
            assert not any(GOODBYE[:30] in line.text for line in lines)  # none wound up


async def test_a_call_outlasting_the_drain_bound_hears_a_goodbye_and_is_stored(
    tmp_path: Path,
) -> None:
    """DRAIN_TIMEOUT_S=1: the caller who is still talking when the bound runs out hears
    the goodbye in full, the line is closed normally, and the call is stored with what
    the caller said, as a message so that someone calls back."""
    with cluster(tmp_path, ["a"], DRAIN_TIMEOUT_S="1") as one:
        a = one.worker("a")
        signer = SignatureChecker(TOKEN)
        async with httpx.AsyncClient(timeout=60) as http:
            ringing = await ring(http, signer, one.balancer_url, "+15555550701", LINE)
        async with connect_stream(ringing, signer) as peer:
            assert await wait_for_answer(peer, TURN_S)
            turn = await caller_turn(
                peer, "water-heater.wav", load_turn(AUDIO / "water-heater.wav"), TURN_S
            )
            assert turn.latency_ms is not None
            heard_before = len(peer.agent_frames)
            a.signal(signal.SIGTERM)
            await asyncio.wait_for(peer.closed.wait(), TURN_S * 2)  # the caller says nothing more
            goodbye_frames = len(peer.agent_frames) - heard_before
        assert peer.close_code == 1000
        assert goodbye_frames * 0.02 > 2.0  # seconds of the goodbye sentence reached the line
        assert await asyncio.to_thread(a.wait_exit, 300) == 0
        call = await eventually_stored(one, ringing.call_sid, {"completed", "interrupted"})
        assert call.status == "completed" and call.outcome == "message_taken"
        _, lines = stored(one, ringing.call_sid)
        assert any(line.speaker == "agent" and GOODBYE[:30] in line.text for line in lines)
        assert any(line.speaker == "caller" for line in lines)
