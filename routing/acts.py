"""What the receptionist can decide to do next. The session turns acts into speech and
call control; the policy never touches audio or sockets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class EndCall:
    text: str  # said before the line closes


Act = Say | EndCall
