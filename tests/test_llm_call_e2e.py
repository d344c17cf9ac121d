"""A call answered by the LLM policy, configured the way a user would (OPENAI_* settings),
against a local server speaking OpenAI's wire format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import fake_openai
from tests.conftest import AUDIO, MANIFEST, RunningServer, ServerThread, wait_stored
from tests.fake_openai import Call, Error, FakeOpenAI, Text, ToolCalls
from tests.textnorm import heard_as
from voice_agent.replay.calls import place_call
from voice_agent.settings import Settings

openai_server = fake_openai.openai_server


@pytest.fixture(scope="module")
def llm_agent(tmp_path_factory, openai_server: FakeOpenAI) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("llm"),
        twilio_auth_token="llm-token",
        openai_api_key="test-key",
        openai_base_url=openai_server.url + "/v1",
        openai_model="receptionist-test",
    )
    thread = ServerThread(settings)
    with thread as url:
        yield RunningServer(url=url, settings=settings, app=thread.app)


async def test_the_model_speaks_and_its_tools_act(
    llm_agent: RunningServer, openai_server: FakeOpenAI
) -> None:
    openai_server.reset()
    openai_server.script(
        Text("Oh no, a clogged sink. ", "What's your name?"),
        ToolCalls(
            Call("take_message", {"name": "Maria Lopez", "reason": "clogged sink"}),
            text="Thanks Maria, I'll pass that on. ",
        ),
        Text("Goodbye!"),
        ToolCalls(Call("end_call", {})),
    )
    turns = [AUDIO / t for t in ("sink-clogged.wav", "name-maria.wav", "goodbye.wav")]
    result = await place_call(llm_agent.url, "llm-token", turns, fast=True)
    call = await wait_stored(llm_agent, result.call_sid)
    agent = [s["text"] for s in call["transcript"] if s["speaker"] == "agent"]
    assert "Oh no, a clogged sink. What's your name?" in agent
    assert call["outcome"] == "message_taken" and call["message"]["name"] == "Maria Lopez"
    first = openai_server.requests[0]
    assert first["model"] == "receptionist-test" and first["stream"] is True
    assert heard_as(first["messages"][-1]["content"], MANIFEST["turns"]["sink-clogged.wav"]["text"])


async def test_a_failing_model_falls_back_and_the_call_goes_on(
    llm_agent: RunningServer, openai_server: FakeOpenAI
) -> None:
    openai_server.reset()
    openai_server.script(Error(500), Error(500), Error(500))
    turns = [AUDIO / t for t in ("sink-clogged.wav", "name-maria.wav")]
    result = await place_call(llm_agent.url, "llm-token", turns, fast=True)
    assert all(t.latency_ms is not None for t in result.turns), "no dead air"
    call = await wait_stored(llm_agent, result.call_sid)
    agent = [s["text"] for s in call["transcript"] if s["speaker"] == "agent"]
    assert any("May I have your name" in line for line in agent), agent
