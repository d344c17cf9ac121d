"""Businesses and profiles from the command line, as an operator would use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from storage.businesses import BusinessStore
from storage.consent import ConsentStore
from storage.db import make_engine
from storage.models import ConsentRecord, Handoff
from storage.reception import ReceptionStore
from tests.pg_support import KINDS, database_url


def cli(data: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(data)}
    env.pop("DATABASE_URL", None)
    if db:
        env["DATABASE_URL"] = db
    return subprocess.run(
        [sys.executable, "-m", "voice_agent.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_add_list_export_import(tmp_path: Path) -> None:
    added = cli(
        tmp_path,
        "business",
        "add",
        "--name",
        "Sparks Electric",
        "--line",
        "+15550100300",
        "--timezone",
        "America/Chicago",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    new_id = json.loads(added.stdout)["id"]
    listed = json.loads(cli(tmp_path, "business", "list", "--json").stdout)
    assert [(b["name"], b["line"]) for b in listed] == [
        ("Bluebird Plumbing & HVAC", "+15550100200"),
        ("Sparks Electric", "+15550100300"),
    ]

    demo = yaml.safe_load(cli(tmp_path, "business", "export", "1").stdout)
    assert demo["opening_hours"]["mon"] == ["07:00", "19:00"] and demo["visits_per_slot"] == 2
    assert demo["dispatchers"][0]["sms_opt_in"] is True

    demo.update(
        name="Sparks Electric",
        line="+15550100300",
        timezone="America/Chicago",
        emergency_rules=["sparking", "burning smell"],
        vocabulary=["Quail Hollow Road", "Tchoupitoulas Street", "Naperville"],
    )
    profile = tmp_path / "sparks.yaml"
    profile.write_text(yaml.safe_dump(demo))
    imported = cli(tmp_path, "business", "import", str(new_id), str(profile))
    assert imported.returncode == 0, imported.stderr
    again = yaml.safe_load(cli(tmp_path, "business", "export", str(new_id)).stdout)
    assert again["emergency_rules"] == ["sparking", "burning smell"]
    assert again["vocabulary"] == ["Quail Hollow Road", "Tchoupitoulas Street", "Naperville"]
    assert "Birch Avenue" in demo_vocabulary(tmp_path), "the demo lists its streets"
    assert again["dispatchers"] == demo["dispatchers"]


def test_bad_input_is_refused_with_a_reason(tmp_path: Path) -> None:
    dup = cli(
        tmp_path, "business", "add", "--name", "X", "--line", "+15550100200", "--timezone", "UTC"
    )
    assert dup.returncode == 1 and "already belongs" in dup.stderr
    bad_tz = cli(
        tmp_path, "business", "add", "--name", "X", "--line", "+1555", "--timezone", "Mars/Olympus"
    )
    assert bad_tz.returncode == 1 and "unknown time zone" in bad_tz.stderr
    junk = tmp_path / "junk.yaml"
    junk.write_text("colour: blue\n")
    refused = cli(tmp_path, "business", "import", "1", str(junk))
    assert refused.returncode == 1 and "unknown profile fields: colour" in refused.stderr
    missing = cli(tmp_path, "business", "export", "99")
    assert missing.returncode == 1 and "no business 99" in missing.stderr


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_an_unchanged_export_imports_again_after_a_handoff(db_url: str, tmp_path: Path) -> None:
    exported = cli(tmp_path, "business", "export", "1", db=db_url)
    assert exported.returncode == 0, exported.stderr
    engine = make_engine(db_url)
    dana = BusinessStore(engine).by_id(1).on_call  # type: ignore[union-attr]
    assert dana is not None and dana.sms_opt_in
    ReceptionStore(engine).hand_off(1, "CAhandoff1", dana, "emergency", "burst pipe")
    # Dana texted STOP: a profile import that does not change her opt-in must not undo it
    ConsentStore(engine).record(1, dana.phone, False, "sms_keyword", "STOP")
    with engine.connect() as conn:
        consent_rows = conn.scalar(select(func.count(ConsentRecord.id)))

    profile = tmp_path / "bluebird.yaml"
    profile.write_text(exported.stdout)
    for _ in range(2):
        imported = cli(tmp_path, "business", "import", "1", str(profile), db=db_url)
        assert imported.returncode == 0, imported.stderr
        assert cli(tmp_path, "business", "export", "1", db=db_url).stdout == exported.stdout
    after = BusinessStore(engine).by_id(1)
    assert after is not None and [d.id for d in after.dispatchers] == [dana.id]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(ConsentRecord.id))) == consent_rows
    assert not ConsentStore(engine).has_opt_in(1, dana.phone)

    # Dana leaves; Lee takes the calls. Handoffs refer to Dana: she is kept, off call.
    data = yaml.safe_load(exported.stdout)
    data["dispatchers"] = [
        {"name": "Lee Park", "phone": "+15550100277", "on_call": True, "sms_opt_in": True}
    ]
    profile.write_text(yaml.safe_dump(data))
    imported = cli(tmp_path, "business", "import", "1", str(profile), db=db_url)
    assert imported.returncode == 0, imported.stderr
    assert "kept dispatcher Dana Whitfield" in imported.stdout
    after = BusinessStore(engine).by_id(1)
    assert after is not None and after.on_call is not None and after.on_call.name == "Lee Park"
    kept = [d for d in after.dispatchers if d.id == dana.id]
    assert kept and not kept[0].on_call and not kept[0].sms_opt_in
    with engine.connect() as conn:
        assert conn.scalar(select(Handoff.dispatcher_id)) == dana.id
    assert ConsentStore(engine).has_opt_in(1, "+15550100277")

    # Lee, whom no handoff refers to, is removed for good once the file leaves him out
    data["dispatchers"] = []
    profile.write_text(yaml.safe_dump(data))
    imported = cli(tmp_path, "business", "import", "1", str(profile), db=db_url)
    assert imported.returncode == 0, imported.stderr
    after = BusinessStore(engine).by_id(1)
    assert after is not None and [d.id for d in after.dispatchers] == [dana.id]
    assert not ConsentStore(engine).has_opt_in(1, "+15550100277")
    engine.dispose()


def test_a_dispatcher_renamed_keeps_its_row(tmp_path: Path) -> None:
    data = yaml.safe_load(cli(tmp_path, "business", "export", "1").stdout)
    engine = make_engine(f"sqlite:///{tmp_path / 'voice-agent.db'}")
    before = BusinessStore(engine).by_id(1).dispatchers  # type: ignore[union-attr]
    data["dispatchers"][0]["name"] = "Dana Whitfield-Ortiz"
    data["dispatchers"].append({"name": "Sam Reyes", "phone": "+15550100266"})
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(data))
    assert cli(tmp_path, "business", "import", "1", str(profile)).returncode == 0
    after = BusinessStore(engine).by_id(1).dispatchers  # type: ignore[union-attr]
    assert (after[0].id, after[0].name) == (before[0].id, "Dana Whitfield-Ortiz")
    assert after[1].name == "Sam Reyes" and not after[1].on_call
    engine.dispose()


def test_a_line_of_another_business_is_refused_in_one_line(tmp_path: Path) -> None:
    added = cli(
        tmp_path, "business", "add", "--name", "Sparks", "--line", "+15550100300",
        "--timezone", "America/Chicago",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    profile = tmp_path / "p.yaml"
    profile.write_text("line: '+15550100300'\n")
    line = one_error_line(cli(tmp_path, "business", "import", "1", str(profile)))
    assert "+15550100300 already belongs to a business" in line


def test_yaml_numbers_that_are_hours_and_zip_codes_stay_what_was_written(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "opening_hours:\n  mon: [9:00, 17:30]\n  tue: [07:00, '19:00']\n"
        "service_area: [01106, 01108, 02134, Springfield]\nslot_minutes: 90\n"
    )
    imported = cli(tmp_path, "business", "import", "1", str(profile))
    assert imported.returncode == 0, imported.stderr
    text = cli(tmp_path, "business", "export", "1").stdout
    for plain_yaml in (yaml.safe_load(text), yaml.load(text, Loader=yaml.FullLoader)):
        assert plain_yaml["opening_hours"]["mon"] == ["09:00", "17:30"]
        assert plain_yaml["opening_hours"]["tue"] == ["07:00", "19:00"]
        assert plain_yaml["service_area"] == ["01106", "01108", "02134", "Springfield"]
        assert plain_yaml["slot_minutes"] == 90
    assert "- '01108'" in text and "- '07:00'" in text  # quoted for whoever edits it next


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("opening_hours: {mon: [9am, '17:00']}", 'opening_hours.mon[0]: hours are "HH:MM"'),
        ("opening_hours: {mon: ['17:00', '09:00']}", "mon: opens at 17:00"),
        ("opening_hours: {someday: ['09:00', '17:00']}", "opening_hours.someday"),
        ("service_area: [1106]", "service_area[0]: a ZIP code has 5 digits"),
        ("slot_minutes: 0", "slot_minutes: Input should be greater than or equal to 5"),
        ("timezone: Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("name: null", "name: cannot be empty (null)"),
        ("slot_minutes: null", "slot_minutes: cannot be empty (null)"),
        ("dispatchers: [{name: A, phone: '+15550100299', colour: red}]", "dispatchers[0].colour"),
        ("dispatchers: [{name: A, phone: '555-0199'}]", "dispatchers[0].phone"),
        ("services: [{name: x, minutes: 30}]", "services[0].minutes: unknown field"),
        ("opening_hours: [mon", "not valid YAML (line 2"),
        ("- just a list", "a profile is a YAML mapping"),
    ],
)
def test_a_wrong_profile_is_refused_naming_the_field(
    tmp_path: Path, content: str, says: str
) -> None:
    before = cli(tmp_path, "business", "export", "1").stdout
    profile = tmp_path / "p.yaml"
    profile.write_text(content + "\n")
    line = one_error_line(cli(tmp_path, "business", "import", "1", str(profile)))
    assert line.startswith(f"error: {profile}: ") and says in line, line
    assert cli(tmp_path, "business", "export", "1").stdout == before


def test_several_wrong_fields_are_listed_one_a_line(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("slot_minutes: -1\nservice_area: ['123']\n")
    done = cli(tmp_path, "business", "import", "1", str(profile))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"error: {profile}: 2 problems:", done.stderr
    assert [x.split(":")[0].strip() for x in lines[1:]] == ["service_area[0]", "slot_minutes"]


def demo_vocabulary(tmp_path: Path) -> list[str]:
    return yaml.safe_load(cli(tmp_path, "business", "export", "1").stdout)["vocabulary"]
