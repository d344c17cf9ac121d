"""The database a CLI command works on: the service's, brought to the newest schema first
(a command may be the first thing to touch a new database), and closed when it is done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from storage import db
from voice_agent.settings import Settings


@contextmanager
def database(settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(settings.resolved_database_url())
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
