"""Finding a business by the number that was called or texted, and storage's import order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.businesses import BusinessStore
from storage.db import make_engine, session_factory, upgrade
from storage.models import PhoneNumber

DEMO_LINE = "+15550100200"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/voice-agent.db")
    upgrade(engine)  # the demo business, on DEMO_LINE
    yield engine
    engine.dispose()


def test_a_business_is_found_by_its_line_or_its_other_numbers(engine: Engine) -> None:
    store = BusinessStore(engine)
    other = store.add("Quick Electric", "+15550100300", "UTC")
    with session_factory(engine).begin() as s:
        s.add(PhoneNumber(business_id=other, number="+15550100301", label="ads"))
        s.add(PhoneNumber(business_id=other, number=DEMO_LINE, label="a mistake"))
    demo = store.by_line(DEMO_LINE)
    assert demo is not None and demo.name.startswith("Bluebird")  # a main line comes first
    found = store.by_line("+15550100301")
    assert found is not None and (found.id, found.line) == (other, "+15550100300")
    assert store.by_line("+15559999999") is None and store.by_line("") is None


def test_storage_db_does_not_import_the_stores_built_on_it() -> None:
    """No import circle: seeding the demo business needs storage.business_rows only."""
    check = (
        "import sys; from storage import db; db.upgrade(db.make_engine('sqlite://')); "
        "assert 'storage.businesses' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", check], check=True)
