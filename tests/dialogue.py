"""Text conversations with a policy over a real (SQLite) database, for dialogue tests."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from routing.acts import EndCall, Speak, Transfer
from routing.local import LocalPolicy
from routing.tools import ReceptionTools
from storage.businesses import BusinessStore
from storage.calls import CallStore
from storage.db import make_engine, upgrade
from storage.reception import ReceptionStore
from transcripts.heard import Heard, HeardWord

NY = ZoneInfo("America/New_York")
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=NY)
_sids = itertools.count(1)


class Conversation:
    def __init__(self, db: Path, now: datetime = MONDAY_10AM, caller: str = "+15555550123"):
        self.engine = make_engine(f"sqlite:///{db}")
        upgrade(self.engine)
        self.profile = BusinessStore(self.engine).by_line("+15550100200")
        assert self.profile is not None
        self.call_sid = f"CAtext{next(_sids)}"
        CallStore(self.engine).open_call(self.call_sid, self.profile.id, caller, self.profile.line)
        self.events: list[tuple[str, dict]] = []
        self.tools = ReceptionTools(
            self.profile,
            self.call_sid,
            caller,
            ReceptionStore(self.engine),
            events=lambda name, data: self.events.append((name, data)),
            clock=lambda: now,
        )
        self.policy = LocalPolicy(self.profile, self.tools)
        self.control: str | None = None

    async def _collect(self, parts) -> str:  # type: ignore[no-untyped-def]
        said = []
        async for part in parts:
            if isinstance(part, Speak):
                said.append(part.text)
            elif isinstance(part, Transfer):
                self.control = "transfer"
            elif isinstance(part, EndCall):
                self.control = "end"
        return " ".join(said)

    async def greet(self) -> str:
        return await self._collect(self.policy.greet())

    async def say(self, text: str, heard: Heard | None = None) -> str:
        return await self._collect(self.policy.respond(text, heard))

    async def unsure_of(self, text: str, *doubted: str) -> str:
        """The caller says `text`; the recognizer was unsure of the words `doubted`."""
        words = tuple(HeardWord(w, 0.2 if w in doubted else 0.95) for w in text.split())
        return await self.say(text, Heard(text, words))

    async def spell(self, letters: str) -> str:
        """The caller spells a word; the letters-only reading heard these letters."""
        text = " ".join(letters)
        return await self.say(text, Heard(text, letters=letters.upper()))

    async def key(self, keys: str) -> str:
        """The caller presses keys on the phone."""
        return await self.say(keys, Heard(keys, keyed=True))

    @property
    def outcome(self) -> str:
        return self.tools.facts.outcome(caller_spoke=True)
