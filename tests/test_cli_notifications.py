"""`voice-agent webhooks add|list` against a fresh SQLite database."""

from __future__ import annotations

import argparse
import json

import pytest

from voice_agent.cli.notifications import HANDLERS, add_parsers
from voice_agent.settings import Settings


def run(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="voice-agent")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return HANDLERS[args.command](args, settings)


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/t.db")


def test_add_then_list(settings, capsys) -> None:
    url = "https://crm.example.com/hook"
    argv = ["webhooks", "add", "--business", "1", "--url", url, "--json"]
    assert run([*argv, "--event", "booking.created", "--event", "call.completed"], settings) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["secret"].startswith("whsec_")
    assert added["events"] == ["booking.created", "call.completed"]

    assert run(["webhooks", "add", "--business", "1", "--url", url + "2"], settings) == 0
    out = capsys.readouterr().out
    assert "whsec_" in out and "all" in out

    assert run(["webhooks", "list", "--business", "1", "--json"], settings) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [added["id"], added["id"] + 1]
    assert (
        listed[0]["events"] == ["booking.created", "call.completed"] and listed[1]["events"] == []
    )
    assert "secret" not in listed[0]


def test_add_errors(settings, capsys) -> None:
    assert run(["webhooks", "add", "--business", "42", "--url", "https://x.example"], settings) == 1
    assert "no business 42" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(
            ["webhooks", "add", "--business", "1", "--url", "https://x", "--event", "nope"],
            settings,
        )
