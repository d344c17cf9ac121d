"""The caller talks over the agent: Twilio is told to clear, and the record says what was
heard (the sentences whose marks came back) and what was not."""

from __future__ import annotations

import asyncio

import httpx

from tests.calling import line_silence_until, until_agent_speaks
from tests.conftest import AUDIO, MANIFEST, RunningServer, wait_stored
from tests.textnorm import heard_as
from transcripts.backchannel import is_backchannel
from voice_agent.replay.audio import load_turn
from voice_agent.replay.peer import TwilioPeer, connect_stream, ring
from voice_agent.twilio.signatures import SignatureChecker


async def talk_over(peer: TwilioPeer, mulaw: bytes) -> None:
    """The caller's audio, a little faster than real time, while the agent is speaking."""
    for i in range(0, len(mulaw) - 159, 160):
        await peer.send_audio(mulaw[i : i + 160])
        await asyncio.sleep(0.002)


async def until_mark(peer: TwilioPeer, name: str) -> bool:
    """Line silence until the agent sends mark `name`."""
    return await line_silence_until(
        peer, lambda: any(m["event"] == "mark" and m["mark"]["name"] == name for m in peer.received)
    )


async def test_caller_speaking_over_the_greeting_clears_it(server: RunningServer) -> None:
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550150", "+15550100200")
    async with connect_stream(ringing, signer, fast=True) as peer:
        peer.echo_marks = False  # hold the greeting "in the caller's ear"
        first_sentence_sent = await line_silence_until(
            peer, lambda: any(name == "u1.s0" for _, name in peer.pending_marks)
        )
        assert first_sentence_sent, "the agent never greeted"
        # The first sentence has played; the caller cuts in during the second.
        peer.pending_marks = [(t, n) for t, n in peer.pending_marks if n != "u1.s0"]
        await peer.send("mark", mark={"name": "u1.s0"})
        # The rest of the greeting is still playing when the caller talks over it.
        await talk_over(peer, load_turn(AUDIO / "sink-clogged.wav"))
        assert peer.cleared.is_set(), "the agent kept talking over the caller"
        peer.echo_marks = True  # Twilio returns the cleared marks; the answer can play
        assert await until_mark(peer, "u2.end"), "the caller's words were never answered"
    call = await wait_stored(server, ringing.call_sid)
    greeting = call["transcript"][0]
    assert greeting["speaker"] == "agent" and greeting["interrupted"]
    assert greeting["heard_text"] == "Thanks for calling Bluebird Plumbing & HVAC."
    caller = [s["text"] for s in call["transcript"] if s["speaker"] == "caller"]
    sink = MANIFEST["turns"]["sink-clogged.wav"]["text"]
    assert any(heard_as(line, sink) for line in caller), caller


async def test_line_noise_under_the_agent_does_not_interrupt(server: RunningServer) -> None:
    import numpy as np

    from media import g711

    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550151", "+15550100200")
    rng = np.random.default_rng(7)
    async with connect_stream(ringing, signer, fast=True) as peer:
        peer.echo_marks = False  # the greeting stays "in the caller's ear"
        # The agent must be speaking for the hiss to be under it: its audio has arrived.
        assert await until_agent_speaks(peer), "the agent never greeted"
        for _ in range(150):  # 3 s of faint hiss while the greeting plays
            noise = (rng.standard_normal(160) * 60).astype(np.int16)
            await peer.send_audio(g711.encode(noise))
            await asyncio.sleep(0.005)
        assert not peer.cleared.is_set(), "line noise stopped the agent"
        peer.echo_marks = True
        # Twilio plays the rest and echoes every mark: the greeting was heard to the end.
        assert await line_silence_until(peer, lambda: peer.answer_finished)
    call = await wait_stored(server, ringing.call_sid)
    greeting = call["transcript"][0]
    assert greeting["speaker"] == "agent" and not greeting["interrupted"]


async def test_okay_over_the_greeting_stops_it_and_then_the_agent_carries_on(
    server: RunningServer,
) -> None:
    import numpy as np

    from media import g711
    from media.tts import PiperSynthesizer

    pad = np.zeros(4000, np.int16)
    okay = g711.encode(np.concatenate([pad, PiperSynthesizer().synthesize("Okay."), pad]))
    signer = SignatureChecker(server.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550152", "+15550100200")
    async with connect_stream(ringing, signer, fast=True) as peer:
        peer.echo_marks = False  # the greeting is still playing
        assert await until_agent_speaks(peer), "the agent never greeted"
        await talk_over(peer, okay)
        assert peer.cleared.is_set(), "the agent did not stop when the caller spoke"
        peer.echo_marks = True  # the rest of the greeting is said again, then played out
        assert await until_mark(peer, "u2.end"), "the agent never carried on"
    call = await wait_stored(server, ringing.call_sid)
    agent = [s for s in call["transcript"] if s["speaker"] == "agent"]
    assert agent[0]["interrupted"]
    assert agent[1]["text"].startswith("Thanks for calling"), "it said the greeting again"
    # What Whisper writes for it varies ("Okay.", "OK."); the caller's one short line is kept.
    [heard] = [s["text"] for s in call["transcript"] if s["speaker"] == "caller"]
    assert is_backchannel(heard), heard
    assert call["turns"] == [], "'okay' is not a question for the receptionist"
