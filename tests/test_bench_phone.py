"""The phone bench's sets and its burst barrier."""

from __future__ import annotations

import asyncio
import json

from bench.phone_run import TurnBarrier
from bench.phone_sets import PHONE, load_set, plan_call
from media import g711


def test_tuning_and_held_out_sets_are_apart_and_complete() -> None:
    tuning, held_out = load_set("tuning"), load_set("held_out")
    assert tuning and held_out
    assert not {c.name for c in tuning} & {c.name for c in held_out}
    tuning_files = {p for c in tuning for p in c.turns}
    held_out_files = {p for c in held_out for p in c.turns}
    assert not tuning_files & held_out_files
    assert all(p.is_file() for p in tuning_files | held_out_files)
    manifest = json.loads((PHONE / "manifest.json").read_text())
    assert {c["name"] for c in manifest["calls"]} <= {c.name for c in held_out}
    turns = manifest["turns"]
    assert all(t["text"] and t["licence"] and t["source"] for t in turns.values())
    assert any(t["pauses_ms"] for t in turns.values())  # some turns pause mid-sentence


def test_a_planned_call_has_its_speech_inside_each_turn() -> None:
    call = next(c for c in load_set("held_out") if c.name == "person-handoff")
    plan = plan_call(call, 0, phone_line=True, seed=1)
    for turn in plan.turns:
        assert 0 < turn.start < turn.end <= len(turn.mulaw)
    assert plan.line_noise is not None and len(plan.line_noise()) == g711.FRAME_BYTES
    assert len(plan.lead(333)) == 333
    clean = plan_call(call, 0, phone_line=False, seed=1)
    assert clean.line_noise is None
    assert clean.lead(160) == bytes([g711.SILENCE_CODE]) * 160


async def test_the_barrier_waits_for_every_call_still_on_the_line() -> None:
    barrier = TurnBarrier(3)
    first, second = barrier.arrive(), barrier.arrive()
    assert first is second and not first.is_set()
    barrier.leave()  # the third hung up: nobody waits for it
    assert first.is_set()
    again = barrier.arrive()
    assert again is not first and not again.is_set()
    barrier.arrive()
    assert again.is_set()


async def test_the_barrier_releases_waiting_tasks_together() -> None:
    barrier = TurnBarrier(2)
    order: list[str] = []

    async def call(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await barrier.arrive().wait()
        order.append(name)

    await asyncio.wait_for(asyncio.gather(call("a", 0), call("b", 0.01)), 30)
    assert sorted(order) == ["a", "b"]
