"""What the Twilio adapter keeps for the app, beside Services (which knows no provider):
the checker of its signed webhooks and streams, and the handoffs it can dial from memory
when the database is away."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from voice_agent.twilio.signatures import SignatureChecker
from voice_agent.twilio.transfers import RecentTransfers


@dataclass
class TwilioState:
    signatures: SignatureChecker
    transfers: RecentTransfers = field(default_factory=RecentTransfers)


def twilio_state(connection: HTTPConnection) -> TwilioState:
    """The TwilioState create_app built for this app (HTTP requests and WebSockets)."""
    return connection.app.state.twilio


TwilioDep = Annotated[TwilioState, Depends(twilio_state)]
