"""LLMPolicy: the receptionist as an OpenAI chat model (any OpenAI-compatible server) that
streams its words and acts through ReceptionTools. A slow or broken model never leaves dead
air: the turn falls back to a local policy and the call goes on."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from openai.types.chat import ChatCompletionChunk

from routing.acts import EndCall, ReplyPart, Speak, Transfer
from routing.backend import UNAVAILABLE
from routing.llm_prompt import goodbye_line, greeting, system_prompt, transfer_line
from routing.llm_tools import Rejection, parse_arguments, sanitized_arguments, tool_schemas
from routing.policy import Policy
from routing.tools import ReceptionTools
from storage.profiles import BusinessProfile
from transcripts.heard import Heard

log = logging.getLogger(__name__)

T = TypeVar("T")
Message = dict[str, Any]

MAX_ROUNDS = 4  # model calls per caller turn; the last one may not call tools
STILL_THERE = "Are you still there?"
SORRY = "Sorry, I didn't catch that. Could you say it again?"
TOOL_FAILED = {  # what the model learns of a tool that raised
    "error": "unavailable",
    "reason": UNAVAILABLE,
    "instructions": "Tell the caller honestly, then take their name, number and what it is "
    "about so someone calls back.",
}
_SENTENCE_DONE = re.compile(r"[.!?]\s")  # what the session speaks: a sentence and what follows


class ModelFailure(Exception):
    """This turn's model output can't be used: the fallback answers instead."""


@dataclass
class ToolCall:
    id: str
    name: str = ""
    arguments: str = ""  # JSON text, streamed in pieces

    def message(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {
            "name": self.name, "arguments": sanitized_arguments(self.arguments)}}  # fmt: skip


@dataclass
class Reply:
    """One streamed model response, as far as it got."""

    text: str = ""
    calls: dict[int, ToolCall] = field(default_factory=dict)  # by the stream's tool-call index
    token_at: float | None = None  # loop time of the last token (empty chunks don't count)
    finished: bool = False  # a finish_reason arrived: the response is whole

    @property
    def progressed(self) -> bool:
        """A token (text or tool call) arrived."""
        return self.token_at is not None

    def size(self) -> tuple[int, int, int]:
        """Grows with every token, text or tool call."""
        calls = self.calls.values()
        return len(self.text), len(self.calls), sum(len(c.name + c.arguments) for c in calls)

    def add(self, chunk: ChatCompletionChunk, new_id: Callable[[], str], at: float) -> str:
        """Fold in a chunk that arrived at loop time `at`; returns the text it carried."""
        before = self.size()
        text = ""
        for choice in chunk.choices:  # may be empty (usage chunks, some proxies' prologue)
            delta = choice.delta
            text += delta.content or ""
            for piece in delta.tool_calls or ():
                if piece.index not in self.calls:
                    self.calls[piece.index] = ToolCall(piece.id or new_id())
                call = self.calls[piece.index]
                if piece.function is not None:
                    call.name = call.name or (piece.function.name or "")
                    call.arguments += piece.function.arguments or ""
            self.finished = self.finished or choice.finish_reason is not None
        self.text += text
        if self.size() != before:
            self.token_at = at
        return text


@dataclass
class Turn:
    deadline: float  # loop time by which the caller must have heard something
    spoken: str = ""  # everything yielded to the caller this turn

    @property
    def heard(self) -> bool:
        """A whole sentence went out. Words before it are held back by the session until the
        sentence is complete: the caller hears nothing of them yet."""
        return _SENTENCE_DONE.search(self.spoken) is not None

    def say(self, text: str, fresh: bool = False) -> Speak:
        """`fresh`: a new reply starts (a model's 2nd call, a fixed line): the session joins
        fragments as they are, so keep a space between sentences."""
        if fresh and self.spoken and not self.spoken[-1].isspace() and not text[:1].isspace():
            text = " " + text
        self.spoken += text
        return Speak(text)


class LLMPolicy:
    def __init__(
        self,
        profile: BusinessProfile,
        tools: ReceptionTools,
        client: openai.AsyncOpenAI,
        model: str,
        fallback: Policy,
        first_token_timeout_s: float = 2.0,
        turn_timeout_s: float = 8.0,
        stall_timeout_s: float = 2.0,
    ) -> None:
        self.profile, self.tools, self.client, self.model = profile, tools, client, model
        self.fallback = fallback
        self.first_token_timeout_s = first_token_timeout_s
        self.turn_timeout_s = turn_timeout_s
        self.stall_timeout_s = stall_timeout_s  # the longest pause between two chunks
        self.history: list[Message] = [{"role": "system", "content": system_prompt(profile, tools)}]
        self._tools = tool_schemas(profile)
        self._offered = [t["function"]["name"] for t in self._tools]
        self._ids = itertools.count(1)

    # -- the Policy protocol ------------------------------------------------------------

    async def greet(self) -> AsyncIterator[ReplyPart]:
        # Fixed words, no model call: no latency when the line opens.
        text = greeting(self.profile)
        self._said(text)
        yield Speak(text)

    async def respond(
        self, caller_text: str, heard: Heard | None = None
    ) -> AsyncIterator[ReplyPart]:
        self.history.append({"role": "user", "content": _as_heard(caller_text, heard)})
        turn = Turn(deadline=_now() + self.turn_timeout_s)
        try:
            async with _closing(self._model_turn(turn)) as parts:
                async for part in parts:
                    yield part
            return
        except ModelFailure as exc:
            log.warning("LLM turn failed, the fallback policy answers: %s", exc)
        async with _closing(self._fallback_turn(caller_text, turn, heard)) as parts:
            async for part in parts:
                yield part

    async def on_silence(self, prompts_so_far: int) -> AsyncIterator[ReplyPart]:
        if prompts_so_far == 0:
            self._said(STILL_THERE)
            yield Speak(STILL_THERE)
            return
        text = f"I'll let you go for now. {goodbye_line(self.profile)}"
        self.tools.end_call()  # no database work: safe on the event loop
        self._said(text)
        yield Speak(text)
        yield EndCall()

    async def finish_call(self, caller_lines: list[str]) -> str:
        return await self.tools.settle(caller_lines)

    # -- one caller turn with the model -------------------------------------------------

    async def _model_turn(self, turn: Turn) -> AsyncIterator[ReplyPart]:
        for round_no in range(MAX_ROUNDS):
            final = round_no == MAX_ROUNDS - 1
            reply = Reply()
            try:
                async with _closing(self._stream(reply, turn, final)) as fragments:
                    async for fragment in fragments:
                        first = fragment == reply.text  # this call's first words
                        yield turn.say(fragment, fresh=first)
            finally:
                if not reply.finished:  # failed or cancelled: keep the words, drop the calls
                    self._said(reply.text)
            if not reply.calls:
                if not reply.text.strip():
                    raise ModelFailure("the model returned neither text nor a tool call")
                self._said(reply.text)
                return
            if final:
                self._said(reply.text)
                raise ModelFailure(f"still calling tools after {MAX_ROUNDS} model calls")
            control = await self._run_tools(reply)
            if control is not None:
                if not reply.text.strip():  # the model acted without a word: say what happens
                    line = self._control_line(control)
                    self._said(line)
                    yield turn.say(line, fresh=True)
                yield control
                return

    async def _stream(self, reply: Reply, turn: Turn, final: bool) -> AsyncIterator[str]:
        """Text fragments as they arrive; `reply` collects the rest. Raises ModelFailure."""
        started = _now()
        stream: openai.AsyncStream[ChatCompletionChunk] | None = None
        try:
            request = self.client.chat.completions.create(
                model=self.model, messages=list(self.history), tools=self._tools,
                tool_choice="none" if final else "auto", stream=True,
            )  # fmt: skip
            stream = await _within(self._budget(turn, reply, started), request)
            while True:
                chunk = await _within(self._budget(turn, reply, started), anext(stream, None))
                if chunk is None:
                    break
                text = reply.add(chunk, new_id=lambda: f"call_{next(self._ids)}", at=_now())
                if text:
                    yield text
        except Exception as exc:  # APIError of any kind, broken JSON in the stream, timeouts
            if not reply.finished:  # (after the finish reason only [DONE] was missing)
                raise ModelFailure(_describe(exc, reply)) from exc
        finally:
            if stream is not None:  # also on barge-in: release the HTTP stream now
                await stream.close()
        if not reply.finished:
            raise ModelFailure("the stream ended without a finish reason")

    def _budget(self, turn: Turn, reply: Reply, started: float) -> float:
        """Seconds to wait for the next piece of the stream."""
        now = _now()
        if reply.token_at is not None:  # between tokens: a model that stops has stalled
            wait = reply.token_at + self.stall_timeout_s - now
        else:
            wait = started + self.first_token_timeout_s - now
        if not turn.heard:  # the caller is waiting in silence: the turn deadline applies
            wait = min(wait, turn.deadline - now)
        return max(wait, 0.0)

    # -- tools --------------------------------------------------------------------------

    async def _run_tools(self, reply: Reply) -> ReplyPart | None:
        """Run the calls in order and record them; the Transfer/EndCall they decided on."""
        done: list[tuple[ToolCall, dict[str, Any]]] = []
        try:
            for call in reply.calls.values():
                job = asyncio.ensure_future(self._run_tool(call))
                try:
                    done.append((call, await asyncio.shield(job)))
                except asyncio.CancelledError:
                    # A thread can't be stopped and may already have written to the database:
                    # wait for it so the history says what really happened.
                    done.append((call, await job))
                    raise
        finally:
            self._record_tools(reply.text, done)
        for call, result in done:
            if call.name == "transfer_to_dispatcher" and result.get("transferring"):
                return Transfer()
            if call.name == "end_call" and result.get("ending"):
                return EndCall()
        return None

    async def _run_tool(self, call: ToolCall) -> dict[str, Any]:
        args = parse_arguments(call.name, call.arguments, self._offered)
        if isinstance(args, Rejection):
            # The kind only: the arguments are what the caller said (names, addresses).
            log.info("rejected a %s call: %s", _tool_name(call.name), args.kind)
            return {"error": args.message}
        try:
            # ReceptionTools are synchronous and touch the database.
            return await asyncio.to_thread(getattr(self.tools, call.name), **args)
        except Exception as exc:
            # Not the exception's text: a database error carries the statement's values.
            log.error("tool %s failed: %s", call.name, type(exc).__name__)
            return dict(TOOL_FAILED)

    def _record_tools(self, text: str, done: list[tuple[ToolCall, dict[str, Any]]]) -> None:
        """Only calls that ran, each with its result: a call without one breaks the next
        request."""
        if not done:
            self._said(text)
            return
        self.history.append({"role": "assistant", "content": text or None,
                             "tool_calls": [call.message() for call, _ in done]})  # fmt: skip
        for call, result in done:
            content = json.dumps(result, default=str)
            self.history.append({"role": "tool", "tool_call_id": call.id, "content": content})

    def _control_line(self, control: ReplyPart) -> str:
        if isinstance(control, Transfer):
            return transfer_line(self.profile.on_call.name if self.profile.on_call else None)
        return goodbye_line(self.profile)

    # -- fallback -----------------------------------------------------------------------

    async def _fallback_turn(
        self, caller_text: str, turn: Turn, heard: Heard | None = None
    ) -> AsyncIterator[ReplyPart]:
        said = ""
        try:
            if turn.spoken.strip():  # the model stopped mid-reply: close its sentence first
                said = " " if turn.spoken.rstrip()[-1] in ".!?" else "... "
                yield Speak(said)
            try:
                async with _closing(self.fallback.respond(caller_text, heard)) as parts:
                    async for part in parts:
                        said += part.text if isinstance(part, Speak) else ""
                        yield part
            except Exception as exc:
                log.error("the fallback policy failed too: %s", type(exc).__name__)
                if not said.strip():
                    said += SORRY
                    yield Speak(SORRY)
        finally:
            self._said(said)  # the model keeps the context of what the caller heard

    # -- history ------------------------------------------------------------------------

    def _said(self, text: str) -> None:
        """Record assistant words, joined to the previous assistant words if adjacent."""
        if not text.strip():
            return
        last = self.history[-1]
        if last["role"] == "assistant" and not last.get("tool_calls") and last.get("content"):
            joint = " " if text[:1].isalnum() and not last["content"][-1:].isspace() else ""
            last["content"] += joint + text
        else:
            self.history.append({"role": "assistant", "content": text.lstrip()})


def _tool_name(name: str) -> str:
    """A tool name as the model sent it, fit for a log line (a made-up one is clipped)."""
    return repr(name[:40]) if not name.isidentifier() or len(name) > 40 else name


def _describe(exc: Exception, reply: Reply) -> str:
    if isinstance(exc, TimeoutError):
        return "the stream stalled" if reply.progressed else "no first token in time"
    return f"{type(exc).__name__}: {exc}"


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
    # A timeout around each await, never around a yield: a timeout scope left open across a
    # yield would cancel whatever the consumer is doing meanwhile.
    async with asyncio.timeout(seconds):
        return await awaitable


@asynccontextmanager
async def _closing(parts: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a nested generator at once when its consumer stops (barge-in), not at GC."""
    try:
        yield parts
    finally:
        close = getattr(parts, "aclose", None)
        if close is not None:
            await close()


def _as_heard(text: str, heard: Heard | None) -> str:
    """The caller's turn as the model reads it: keyed digits said as such, and the words the
    recognizer was unsure of named, so the model checks them before it books."""
    if heard is not None and heard.keyed:
        return f"(keyed on the phone keypad) {text}"
    unsure = sorted(heard.unsure()) if heard is not None else []
    if unsure:
        return f"{text}\n(speech recognition unsure of: {', '.join(unsure)})"
    return text
