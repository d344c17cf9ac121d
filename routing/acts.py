"""What a policy tells the call to do, as a stream of parts: words to speak (possibly in
fragments, as a model produces them) and at most one call-control decision."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Speak:
    text: str  # a fragment; the session speaks it at sentence boundaries


@dataclass(frozen=True)
class EndCall:
    """Close the line once everything said so far has been heard."""


@dataclass(frozen=True)
class Transfer:
    """Close the stream once heard; Twilio then dials the on-call dispatcher."""


ReplyPart = Speak | EndCall | Transfer
