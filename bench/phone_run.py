"""Placing the phone bench's calls, in real time: one after another (single), N at once
with every turn k ending at the same moment in all of them (burst), or N started at even
offsets (staggered). Between turns every call streams its line's noise, never silence."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.phone_sets import CallPlan
from voice_agent.replay.audio import FRAME_S, SILENCE_FRAME
from voice_agent.replay.caller import TurnResult, caller_turn, wait_for_answer
from voice_agent.replay.calls import CallResult, place_conversation
from voice_agent.replay.peer import TwilioPeer

LINE_NUMBER = "+15550100200"
TURN_TIMEOUT_S = 30.0
HOLD_TIMEOUT_S = 60.0  # a burst never waits longer than this for its slowest call
QUIET_S = 1.5  # after an answer: this long with nothing from the agent before the next turn


@dataclass
class CallOutcome:
    plan: CallPlan
    result: CallResult
    ends: list[float | None] = field(default_factory=list)  # per turn: end of speech sent at


class TurnBarrier:
    """Before each turn, the calls still on the line wait for one another; a call that
    has hung up (or run out of turns) leaves and is no longer waited for."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self._arrived = 0
        self._released = asyncio.Event()

    def arrive(self) -> asyncio.Event:
        released = self._released
        self._arrived += 1
        self._release_if_all_in()
        return released

    def leave(self) -> None:
        self.parties -= 1
        self._release_if_all_in()

    def release(self) -> None:
        """Let everyone waiting go (a call that never came back must not hold the rest)."""
        self._released.set()
        self._released, self._arrived = asyncio.Event(), 0

    def _release_if_all_in(self) -> None:
        if self._arrived and self._arrived >= self.parties:
            self.release()


async def hold_line(
    peer: TwilioPeer, barrier: TurnBarrier, noise: Callable[[], bytes] | None
) -> None:
    """The line's noise at real-time pace until the barrier opens (returning as soon as it
    does). Waited too long: open it for everyone, so the others still start together."""
    released = barrier.arrive()
    start, sent = time.perf_counter(), 0
    while not released.is_set() and not peer.closed.is_set():
        if time.perf_counter() - start > HOLD_TIMEOUT_S:
            barrier.release()
            return
        await peer.send_audio(noise() if noise else SILENCE_FRAME)
        sent += 1
        wait = start + sent * FRAME_S - time.perf_counter()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), wait)


async def until_quiet(peer: TwilioPeer, noise: Callable[[], bytes] | None) -> None:
    """The line's noise until nothing of the agent's has played for QUIET_S. After a cut-off
    the agent answers twice (the pause, then the rest of the turn; the first answer's
    marks come back with the `clear`): a caller waits for the second before going on,
    or every later turn would be talked over and counted as cut off too."""
    start, sent = time.perf_counter(), 0
    while not peer.closed.is_set() and time.perf_counter() - start < HOLD_TIMEOUT_S:
        now = time.perf_counter()
        # Not answer_finished: an unanswered turn never gets its ".end" mark.
        if (
            not peer.pending_marks
            and now - max(peer.play_until, peer.first_agent_frame or 0) > QUIET_S
        ):
            return
        await peer.send_audio(noise() if noise else SILENCE_FRAME)
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * FRAME_S - time.perf_counter()))


async def place(
    url: str,
    token: str,
    plan: CallPlan,
    say: Callable[[str], None],
    barrier: TurnBarrier | None = None,
    aligned_ends: list[int] | None = None,
) -> CallOutcome:
    """One call. With a barrier, turn k starts after a lead of line noise so that its end
    of speech falls at `aligned_ends[k]` samples after the barrier opened."""
    noise = plan.line_noise
    ends: list[float | None] = []

    async def converse(peer: TwilioPeer, result: CallResult) -> None:
        result.greeted = await wait_for_answer(peer, TURN_TIMEOUT_S, line_noise=noise)
        for k, turn in enumerate(plan.turns):
            if peer.closed.is_set():
                break
            lead = aligned_ends[k] - turn.end if aligned_ends is not None else 0
            mulaw = plan.lead(lead) + turn.mulaw  # made before the barrier: no delay after
            if barrier is not None:
                await hold_line(peer, barrier, noise)
            r: TurnResult = await caller_turn(
                peer,
                turn.name,
                mulaw,
                TURN_TIMEOUT_S,
                line_noise=noise,
                end_sample=lead + turn.end,
            )
            result.turns.append(r)
            ends.append(r.end_sent_at)
            await until_quiet(peer, noise)

    try:
        result = await place_conversation(
            url, token, plan.caller, LINE_NUMBER, False, say, converse
        )
    finally:
        if barrier is not None:
            barrier.leave()
    latencies = [_ms(t.end_latency_ms) for t in result.turns]
    print(f"  {plan.name} ({plan.caller}): {latencies}", flush=True)
    return CallOutcome(plan, result, ends)


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


async def single(url: str, token: str, plans: list[CallPlan]) -> list[CallOutcome]:
    return [await place(url, token, p, _quiet) for p in plans]


async def burst(url: str, token: str, plans: list[CallPlan]) -> list[CallOutcome]:
    """All at once, turn k of every call ending together."""
    depth = max(len(p.turns) for p in plans)
    aligned = [max(p.turns[k].end for p in plans if k < len(p.turns)) for k in range(depth)]
    barrier = TurnBarrier(len(plans))
    return list(
        await asyncio.gather(*[place(url, token, p, _quiet, barrier, aligned) for p in plans])
    )


async def staggered(
    url: str, token: str, plans: list[CallPlan], offset_s: float
) -> list[CallOutcome]:
    async def later(i: int, plan: CallPlan) -> CallOutcome:
        await asyncio.sleep(i * offset_s)
        return await place(url, token, plan, _quiet)

    return list(await asyncio.gather(*[later(i, p) for i, p in enumerate(plans)]))


def end_spreads(outcomes: list[CallOutcome]) -> list[float]:
    """Per turn index: how far apart (ms) the calls' ends of speech actually fell."""
    depth = max((len(o.ends) for o in outcomes), default=0)
    spreads = []
    for k in range(depth):
        at = [e for o in outcomes if k < len(o.ends) and (e := o.ends[k]) is not None]
        if len(at) > 1:
            spreads.append((max(at) - min(at)) * 1000)
    return spreads


def _quiet(_msg: str) -> None:
    pass
