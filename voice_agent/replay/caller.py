"""The caller's half of a conversation: speak a turn (or a whole recorded stream) at
real-time pace, then line silence until the agent's answer has played; time each answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from media import g711
from voice_agent.replay.audio import FRAME_S, SILENCE_FRAME, speech_end_frame, speech_spans
from voice_agent.replay.peer import TwilioPeer

LineNoise = Callable[[], bytes]  # the next 20 ms of a line with nobody talking (mu-law)


@dataclass
class TurnResult:
    file: str
    latency_ms: float | None  # end of speech in the file -> first agent frame
    agent_audio_s: float = 0.0
    # The same from an end of speech the caller gave (`end_sample`), e.g. found by energy in
    # the clean recording: a ruler that is not the server's own VAD.
    end_latency_ms: float | None = None
    end_sent_at: float | None = None  # perf_counter() when that sample was sent


async def caller_stream(
    peer: TwilioPeer,
    name: str,
    mulaw: bytes,
    timeout_s: float,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[bool, list[TurnResult]]:
    """Send the whole stream as Twilio would, the agent answering (or being talked over)
    as it goes. Real time, or with `peer.fast`: as fast as the agent keeps up, i.e. at full
    speed except in the caller's pauses, which go at real-time pace until the agent's
    answer is out (the rest of the pause is then skipped through at full speed). Then line
    silence until the answer to the last words has played. Returns whether the agent
    spoke before the caller did (the greeting), and a TurnResult per stretch of speech."""
    mulaw += bytes([g711.SILENCE_CODE]) * (-len(mulaw) % g711.FRAME_BYTES)
    frames = [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
    spans = speech_spans(mulaw)
    starts = {s.start: k for k, s in enumerate(spans)}
    ends = {s.end: k for k, s in enumerate(spans)}
    decided = {s.decided for s in spans}
    results: list[TurnResult] = []
    pending: tuple[int, float, int] | None = None  # span index, speech end time, frames then

    def settle() -> None:
        nonlocal pending
        if pending is None:
            return
        k, speech_end, frames_then = pending
        first = peer.first_agent_frame
        latency = (first - speech_end) * 1000 if first is not None else None
        audio_s = (len(peer.agent_frames) - frames_then) * FRAME_S
        results.append(TurnResult(f"{name}#{k + 1}", latency, audio_s))
        say(f"caller speech {k + 1}: agent answered after {shown(results[-1])}")
        pending = None

    greeted: bool | None = None
    holding = True  # the greeting: real-time pace until it has played
    clock, paced = time.perf_counter(), 0
    for i, frame in enumerate(frames):
        if peer.closed.is_set():
            break
        if i in starts:
            if greeted is None:
                greeted = bool(peer.agent_frames)
                say(f"agent greeted: {greeted}")
            settle()
            holding = False
        if i in ends:
            peer.first_agent_frame = None
            peer.agent_done.clear()
            pending = (ends[i], time.perf_counter(), len(peer.agent_frames))
        if i in decided:
            holding = True
        await peer.send_audio(frame)
        if peer.fast and not (holding and not peer.agent_done.is_set()):
            await asyncio.sleep(0)
            clock, paced = time.perf_counter(), 0
        else:
            paced += 1
            await pace(clock, paced, False)
    if pending is not None and not peer.closed.is_set():
        await wait_for_answer(peer, timeout_s)
    settle()
    if greeted is None:  # the caller never spoke
        greeted = bool(peer.agent_frames)
    return greeted, results


async def caller_turn(
    peer: TwilioPeer,
    name: str,
    mulaw: bytes,
    timeout_s: float,
    *,
    line_noise: LineNoise | None = None,
    end_sample: int | None = None,
) -> TurnResult:
    """Speak one turn, then the line (silence, or `line_noise`) until the answer has
    played. `end_sample`: where the caller's speech ends in `mulaw`, if the caller knows."""
    end_frame = speech_end_frame(mulaw)
    given_end_frame = None if end_sample is None else max(1, -(-end_sample // g711.FRAME_BYTES))
    pad = -len(mulaw) % g711.FRAME_BYTES
    mulaw += line_noise()[:pad] if line_noise else bytes([g711.SILENCE_CODE]) * pad
    frames = [mulaw[i : i + g711.FRAME_BYTES] for i in range(0, len(mulaw), g711.FRAME_BYTES)]
    peer.agent_done.clear()
    peer.first_agent_frame = None
    frames_before = len(peer.agent_frames)
    start = time.perf_counter()
    speech_end_at = start
    given_end_at: float | None = None
    for i, frame in enumerate(frames):
        await peer.send_audio(frame)
        if i + 1 == end_frame:
            speech_end_at = time.perf_counter()
        if i + 1 == given_end_frame:
            given_end_at = time.perf_counter()
        await pace(start, i + 1, peer.fast)
    await wait_for_answer(peer, timeout_s, start, len(frames), line_noise)
    first = peer.first_agent_frame
    latency = (first - speech_end_at) * 1000 if first is not None else None
    result = TurnResult(name, latency, (len(peer.agent_frames) - frames_before) * FRAME_S)
    if given_end_at is not None:
        result.end_sent_at = given_end_at
        result.end_latency_ms = (first - given_end_at) * 1000 if first is not None else None
    return result


async def wait_for_answer(
    peer: TwilioPeer,
    timeout_s: float,
    start: float | None = None,
    sent: int = 0,
    line_noise: LineNoise | None = None,
) -> bool:
    """Stream line silence (or the line's noise) until the agent's answer has played in
    full (or time is up)."""
    start = time.perf_counter() if start is None else start
    fast_frames = sent + 60  # fast mode: rush through the endpointer's hangover only
    deadline = time.perf_counter() + timeout_s
    while not peer.closed.is_set() and time.perf_counter() < deadline:
        if peer.answer_finished:
            return True
        await peer.send_audio(line_noise() if line_noise else SILENCE_FRAME)
        sent += 1
        await pace(start, sent, peer.fast and sent < fast_frames)
    return peer.answer_finished


async def pace(start: float, frames_sent: int, fast: bool) -> None:
    if fast:
        await asyncio.sleep(0)
        return
    await asyncio.sleep(max(0.0, start + frames_sent * FRAME_S - time.perf_counter()))


def shown(turn: TurnResult) -> str:
    return f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "none"
