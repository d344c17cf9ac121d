"""The policy slot: the receptionist's brain for one call. The local policy and the LLM
policy both fill it, and both act through the same ReceptionTools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from routing.acts import ReplyPart
from routing.tools import ReceptionTools
from storage.profiles import BusinessProfile


class Policy(Protocol):
    tools: ReceptionTools

    def greet(self) -> AsyncIterator[ReplyPart]: ...

    def respond(self, caller_text: str) -> AsyncIterator[ReplyPart]:
        """The answer to one caller turn. Cancelled if the caller goes on talking."""
        ...

    def on_silence(self, prompts_so_far: int) -> AsyncIterator[ReplyPart]:
        """The line has been quiet since the agent last spoke."""
        ...


class PolicyFactory(Protocol):
    def __call__(self, profile: BusinessProfile, tools: ReceptionTools) -> Policy: ...
