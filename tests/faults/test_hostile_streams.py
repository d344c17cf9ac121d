"""A Twilio client that misbehaves: gaps in the numbering, floods, a line that goes quiet,
a socket that never says `start`. Each must end with the call stored and other calls, and
the server, unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.calling import eventually
from tests.conftest import AUDIO, RunningServer, ServerThread, wait_stored
from voice_agent.replay.audio import load_turn
from voice_agent.replay.peer import connect_stream, ring
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker

LINE = "+15550100200"


@pytest.fixture(scope="module")
def touchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with short patience, so the tests need not wait for the real defaults."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hostile"),
        twilio_auth_token="test-auth-token-hostile",
        stream_start_timeout_s=1.0,
        silence_prompt_ms=1500,
    )
    thread = ServerThread(settings)
    with thread as url:
        yield RunningServer(url=url, settings=settings, app=thread.app)


async def _healthy(url: str) -> bool:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/healthz", timeout=30)).status_code == 200


async def test_a_jump_in_chunk_numbers_is_not_filled_with_hours_of_silence(
    touchy: RunningServer,
) -> None:
    signer = SignatureChecker(touchy.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, touchy.url, "+15555550170", LINE)
    async with connect_stream(ringing, signer, fast=True) as peer:
        for _ in range(10):
            await peer.send_audio(b"\xff" * 160)
        for jump in (10**6, 10**15):
            peer.chunk += jump  # what a renumbered or hostile stream sends next
            for _ in range(5):
                await peer.send_audio(b"\xff" * 160)
        assert await _healthy(touchy.url), "the server stopped answering"

        def media_ms() -> int:  # the session's clock: audio decoded and run through VAD
            session = touchy.services.sessions.get(ringing.call_sid)
            return session.media_ms if session is not None else 0

        # Past the first jump: its gap has been filled (with at most a second, it must be).
        assert await eventually(lambda: media_ms() >= 10 * 20 + 1000), "the stream stalled"
        # 20 real frames and at most 1 s filled per jump: not 10^6 frames (5.5 hours).
        assert media_ms() <= 20 * 20 + 2 * 1000
    call = await wait_stored(touchy, ringing.call_sid)
    assert call["status"] == "completed"


async def test_a_flood_of_speech_makes_no_turn_longer_than_the_limit(
    touchy: RunningServer,
) -> None:
    """5,000 frames of speech at once (100 s) used to become one 90 s turn holding the shared
    transcription workers. Every stored caller line stays within max_turn_ms."""
    signer = SignatureChecker(touchy.auth_token)
    speech = load_turn(AUDIO / "sink-clogged.wav")
    frames = [speech[i : i + 160] for i in range(0, len(speech) - 159, 160)]
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, touchy.url, "+15555550171", LINE)
    async with connect_stream(ringing, signer, fast=True) as peer:
        peer.echo_marks = False
        for i in range(5000):
            await peer.send_audio(frames[i % len(frames)])
        assert await _healthy(touchy.url)
    call = await wait_stored(touchy, ringing.call_sid)
    limit = touchy.services.session_config.endpointer.max_turn_ms
    caller = [s for s in call["transcript"] if s["speaker"] == "caller"]
    assert caller, "the caller's words were lost"
    assert all(s["end_ms"] - s["start_ms"] <= limit + 1000 for s in caller), caller


async def test_a_socket_that_never_sends_start_is_closed(touchy: RunningServer) -> None:
    signer = SignatureChecker(touchy.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, touchy.url, "+15555550172", LINE)
    async with connect_stream(ringing, signer, send_start=False) as peer:
        await asyncio.wait_for(peer.closed.wait(), 30)
        assert peer.close_code == 1008


async def test_a_line_that_goes_quiet_is_prompted_then_ended(touchy: RunningServer) -> None:
    """After `start`, not one more frame: no `stop`, no close. The agent still prompts the
    caller (the caller hears it) and then ends the call, which is stored."""
    signer = SignatureChecker(touchy.auth_token)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, touchy.url, "+15555550173", LINE)
    async with connect_stream(ringing, signer) as peer:
        await asyncio.wait_for(peer.closed.wait(), 90)  # the agent hung up
        marks = [m["mark"]["name"] for m in peer.received if m["event"] == "mark"]
    assert any(name.startswith("u2.") for name in marks), "the quiet line was never prompted"
    call = await wait_stored(touchy, ringing.call_sid)
    agent = [s for s in call["transcript"] if s["speaker"] == "agent"]
    assert len(agent) >= 2, agent  # the greeting, then at least one prompt


async def test_garbage_between_good_frames_loses_no_words(touchy: RunningServer) -> None:
    signer = SignatureChecker(touchy.auth_token)
    speech = load_turn(AUDIO / "sink-clogged.wav")
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, touchy.url, "+15555550174", LINE)
    async with connect_stream(ringing, signer, fast=True) as peer:
        for i in range(0, len(speech) - 159, 160):
            await peer.send_audio(speech[i : i + 160])
            if i % 3200 == 0:
                await peer.ws.send("{not json")
                await peer.send("media", media={"chunk": "x", "payload": "!!"})
        for _ in range(100):
            await peer.send_audio(b"\xff" * 160)
    call = await wait_stored(touchy, ringing.call_sid)
    assert any(s["speaker"] == "caller" and s["text"] for s in call["transcript"])
    assert call["status"] == "completed"
