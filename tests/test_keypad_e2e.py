"""Keys pressed on the phone, over the wire: Twilio's `dtmf` events on a real media stream
to a real server. A call-back number keyed in is read back, kept on the message and on the
transcript; a key that is no key is a bad message, and the call goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import make_engine
from storage.models import Call, Message
from tests.calling import until_agent_speaks
from tests.conftest import AUDIO, RunningServer, wait_stored
from tests.scripted import scripted_server
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import caller_turn, wait_for_answer
from voice_agent.replay.peer import TwilioPeer, connect_stream, ring
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker

LINE, CALLER = "+15550100200", "+15555550140"


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    data: Path = tmp_path_factory.mktemp("keypad")
    settings = Settings(data_dir=data, twilio_auth_token="keypad-token", silence_prompt_ms=60_000)
    with scripted_server(settings) as server:
        yield server


@asynccontextmanager
async def call(agent: RunningServer) -> AsyncIterator[tuple[TwilioPeer, str]]:
    signer = SignatureChecker(agent.settings.auth_token())
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, agent.url, CALLER, LINE)
        async with connect_stream(ringing, signer, fast=True) as peer:
            assert await until_agent_speaks(peer), "the agent never greeted"
            await wait_for_answer(peer, 30)
            yield peer, ringing.call_sid


async def say(peer: TwilioPeer, wav: str) -> float:
    return (await caller_turn(peer, wav, load_turn(AUDIO / wav), timeout_s=30)).agent_audio_s


async def press(peer: TwilioPeer, keys: str) -> float:
    """Keys as Twilio sends them, one `dtmf` event each; seconds of the answer heard."""
    peer.agent_done.clear()
    before = len(peer.agent_frames)
    for key in keys:
        await peer.send("dtmf", dtmf={"track": "inbound_track", "digit": key})
    await wait_for_answer(peer, 30)
    return (len(peer.agent_frames) - before) * 0.02


def messages_of(agent: RunningServer, call_sid: str) -> list[Message]:
    engine = make_engine(agent.settings.resolved_database_url())
    with Session(engine) as s:
        return list(s.scalars(select(Message).join(Call).where(Call.call_sid == call_sid)))


async def test_a_keyed_call_back_number_is_read_back_and_kept(agent: RunningServer) -> None:
    async with call(agent) as (peer, call_sid):
        assert await say(peer, "billing-question.wav") > 0.3  # "...May I have your name?"
        assert await say(peer, "name-james.wav") > 0.3  # "Is the number you're calling..."
        assert await press(peer, "5552223333#") > 1.0, "the number is read back"
        assert await say(peer, "yes-correct.wav") > 0.3  # "...best time to call you back?"
        assert await say(peer, "callback-evening.wav") > 0.3
    record = await wait_stored(agent, call_sid)
    [message] = messages_of(agent, call_sid)
    assert message.callback_number == "+15552223333" and message.name == "James Carter"
    lines = [(s["speaker"], s["text"]) for s in record["transcript"]]
    assert ("caller", "(keypad) 5552223333") in lines
    agent_said = " ".join(text for who, text in lines if who == "agent")
    assert "5 5 5, 2 2 2, 3 3 3 3" in agent_said
    assert record["outcome"] == "message_taken"


async def test_keys_without_pound_end_after_a_pause(agent: RunningServer) -> None:
    async with call(agent) as (peer, call_sid):
        assert await press(peer, "3") > 0.3, "the menu key is answered once the caller stops"
    record = await wait_stored(agent, call_sid)
    lines = [(s["speaker"], s["text"]) for s in record["transcript"]]
    assert ("caller", "(keypad) 3") in lines
    assert any(who == "agent" and "message" in text for who, text in lines)


async def test_a_key_that_is_no_key_is_a_bad_message_and_the_call_goes_on(
    agent: RunningServer,
) -> None:
    async with call(agent) as (peer, call_sid):
        await peer.send("dtmf", dtmf={"track": "inbound_track", "digit": "<script>"})
        await peer.send("dtmf", dtmf={"track": "inbound_track"})
        assert await say(peer, "hours-question.wav") > 0.3, "still answered"
    record = await wait_stored(agent, call_sid)
    assert not any("keypad" in s["text"] for s in record["transcript"])
    engine = make_engine(agent.settings.resolved_database_url())
    with Session(engine) as s:
        row = s.scalar(select(Call).where(Call.call_sid == call_sid))
        assert row is not None and row.bad_messages == 2
