"""Everything a request handler needs, built once by the application factory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import Engine

from routing.policy import PolicyFactory
from storage.businesses import BusinessStore
from storage.calls import CallStore
from storage.journal import Journal
from storage.live import LiveState
from storage.reception import ReceptionStore
from storage.recordings import RecordingStore
from voice_agent.call.line_writer import LineWriter
from voice_agent.call.session import CallSession, Engines, SessionConfig
from voice_agent.notify.notifier import Notifier
from voice_agent.ops.metrics import Metrics
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker
from voice_agent.twilio.transfers import RecentTransfers


@dataclass
class Services:
    settings: Settings
    db: Engine
    calls: CallStore
    businesses: BusinessStore
    reception: ReceptionStore
    notifier: Notifier
    signatures: SignatureChecker
    policy_factory: PolicyFactory
    session_config: SessionConfig
    live: LiveState
    journal: Journal
    metrics: Metrics
    lines: LineWriter
    recordings: RecordingStore | None = None  # None: calls are never recorded
    transfers: RecentTransfers = field(default_factory=RecentTransfers)
    sessions: dict[str, CallSession] = field(default_factory=dict)  # calls on this worker
    engines: Engines = field(init=False)  # set once the models are loaded
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    load_error: str | None = None
