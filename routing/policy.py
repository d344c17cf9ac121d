"""The policy slot: given the business and what the caller said, the next act."""

from __future__ import annotations

from typing import Protocol

from routing.acts import Act
from storage.calls import BusinessInfo


class Policy(Protocol):
    """One instance per call: it may keep dialogue state between turns."""

    async def greet(self) -> Act: ...

    async def respond(self, caller_text: str) -> Act: ...


class PolicyFactory(Protocol):
    def __call__(self, business: BusinessInfo, caller_number: str) -> Policy: ...
