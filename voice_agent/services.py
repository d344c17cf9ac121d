"""Everything a request handler needs, built once by the application factory
(voice_agent.app.build_services): every store the service uses lives here, and handlers
reach them through voice_agent.api.deps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from routing.policy import PolicyFactory
from storage.audit import AuditLog
from storage.businesses import BusinessStore
from storage.calls import CallStore
from storage.claims import ClaimStore
from storage.consent import ConsentStore
from storage.journal import Journal
from storage.live import LiveState
from storage.reception import ReceptionStore
from storage.recordings import RecordingStore
from storage.sms_log import SmsLog
from storage.tenant_queries import TenantQueries
from storage.users import UserStore
from storage.webhook_store import WebhookStore
from voice_agent.call.line_writer import LineWriter
from voice_agent.call.session import CallSession, Engines, SessionConfig
from voice_agent.notify.notifier import Notifier
from voice_agent.ops.metrics import Metrics
from voice_agent.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Engine
    # stores, each on `db`
    calls: CallStore
    businesses: BusinessStore
    reception: ReceptionStore
    users: UserStore
    audit: AuditLog
    consent: ConsentStore
    sms_log: SmsLog
    webhooks: WebhookStore  # CRM endpoints; notifier.webhooks delivers to them
    queries: TenantQueries  # the dashboard API's reads, scoped to a business
    claims: ClaimStore  # the console's claims on handoffs
    recordings: RecordingStore | None  # None: calls are never recorded
    # the call path
    notifier: Notifier
    policy_factory: PolicyFactory
    session_config: SessionConfig
    live: LiveState
    journal: Journal
    metrics: Metrics
    lines: LineWriter
    sessions: dict[str, CallSession] = field(default_factory=dict)  # calls on this worker
    engines: Engines = field(init=False)  # set once the models are loaded
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    load_error: str | None = None
    # SIGTERM: /healthz says "draining" so the balancer sends no new calls (voice_agent.drain)
    draining: bool = False
    # The live feed (voice_agent.api.events): a keep-alive comment after this much quiet, and
    # each stream ends at this age (the client reconnects), so a disabled token stops in time.
    sse_keepalive_s: float = 15.0
    sse_max_age_s: float = 600.0


def get_services(connection: HTTPConnection) -> Services:
    """The Services create_app built for this app."""
    return connection.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
