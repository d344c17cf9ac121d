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
from voice_agent.line_writer import LineWriter
from voice_agent.metrics import Metrics
from voice_agent.notifier import Notifier
from voice_agent.session import CallSession, Engines, SessionConfig
from voice_agent.settings import Settings
from voice_agent.transfers import RecentTransfers
from voice_agent.twilio_auth import SignatureChecker


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
