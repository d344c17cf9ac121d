"""The policy slot: the receptionist's brain for one call. The local policy and the LLM
policy both fill it, and both act through the same ReceptionTools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from routing.acts import ReplyPart
from routing.tools import ReceptionTools
from storage.profiles import BusinessProfile
from transcripts.heard import Heard


class Policy(Protocol):
    def greet(self) -> AsyncIterator[ReplyPart]: ...

    def respond(self, caller_text: str, heard: Heard | None = None) -> AsyncIterator[ReplyPart]:
        """The answer to one caller turn. Cancelled if the caller goes on talking.
        `heard`: the recognizer's view of the same words (how sure of each, or keyed on
        the keypad), when there is one."""
        ...

    def on_silence(self, prompts_so_far: int) -> AsyncIterator[ReplyPart]:
        """The line has been quiet since the agent last spoke."""
        ...

    async def finish_call(self, caller_lines: list[str]) -> str:
        """The call is over: its outcome ("booked", "handed_off", "message_taken",
        "answered" or "abandoned"), settled from what the call produced and the caller's
        lines. Never raises: should settling it fail, the outcome is told from what the
        call produced so far."""
        ...


class PolicyFactory(Protocol):
    def __call__(self, profile: BusinessProfile, tools: ReceptionTools) -> Policy: ...
