"""Businesses and profiles from the command line, as an operator would use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(data)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", *args],
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
    )
    profile = tmp_path / "sparks.yaml"
    profile.write_text(yaml.safe_dump(demo))
    imported = cli(tmp_path, "business", "import", str(new_id), str(profile))
    assert imported.returncode == 0, imported.stderr
    again = yaml.safe_load(cli(tmp_path, "business", "export", str(new_id)).stdout)
    assert again["emergency_rules"] == ["sparking", "burning smell"]
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
