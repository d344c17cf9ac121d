"""The tree is the architecture (ARCHITECTURE.md): imports only run down the floors below,
and no module grows past what a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("media", "storage", "transcripts", "routing", "voice_agent")

# Higher floors may import lower ones; two rooms on one floor know nothing of each other.
FLOORS: dict[str, int] = {
    "media": 0,
    "storage": 0,
    "transcripts": 1,
    "routing": 2,
    "voice_agent.settings": 3,
    "voice_agent.call": 3,
    "voice_agent.notify": 3,
    "voice_agent.ops": 3,
    "voice_agent.services": 4,
    "voice_agent.api": 5,
    "voice_agent.twilio": 5,
    "voice_agent.drain": 5,
    "voice_agent.console": 6,
    "voice_agent.replay": 6,
    "voice_agent.app": 7,
    "voice_agent.cli": 8,
}
MAX_LINES = 420


def room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "voice_agent" and len(parts) > 1 else parts[0]


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append((dotted.removesuffix(".__init__"), path))
    return found


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """Imported module names, leaving out `if TYPE_CHECKING:` blocks (types only)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "voice_agent":  # `from voice_agent import call`
                names = [f"voice_agent.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def test_every_room_has_a_floor() -> None:
    rooms = {room(dotted) for dotted, _ in modules()} - {"voice_agent"}
    assert rooms <= FLOORS.keys(), f"rooms without a floor: {sorted(rooms - FLOORS.keys())}"


def upward_imports(found: list[tuple[str, Path]]) -> list[str]:
    """Each import that runs up a floor or sideways to another room on the same floor."""
    wrong = []
    for dotted, path in found:
        here = room(dotted)
        for line, name in runtime_imports(path):
            there = room(name)
            if there != here and there != "voice_agent" and FLOORS[there] >= FLOORS[here]:
                wrong.append(f"{path.name}:{line} imports {name}")
    return wrong


def test_imports_run_down_only() -> None:
    wrong = upward_imports(modules())
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(wrong)


def test_the_call_core_knows_no_provider_or_web_framework() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for dotted, path in modules()
        if room(dotted) == "voice_agent.call"
        for _, name in runtime_imports(path)
        if name.startswith("voice_agent.twilio")
    ]
    for dotted, path in modules():
        if room(dotted) == "voice_agent.call":
            text = path.read_text()
            wrong += [
                f"{path.name} uses {w}"
                for w in ("fastapi", "starlette", "twilio")
                if f"import {w}" in text or f"from {w}" in text
            ]
    assert not wrong


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_too_long_to_read(package: str) -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for dotted, path in modules()
        if dotted.split(".")[0] == package and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by job: {long}"


def test_the_layout_check_catches_imports_up_and_sideways(tmp_path: Path) -> None:
    """The check itself can fail: up a floor, sideways, and type-only imports told apart."""
    up = tmp_path / "up.py"
    up.write_text("from voice_agent.app import create_app\nimport storage.db\n")
    sideways = tmp_path / "sideways.py"
    sideways.write_text("from voice_agent.notify.sms import SmsSender\n")
    types_only = tmp_path / "types_only.py"
    types_only.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from voice_agent.twilio.protocol import Message\n"
    )
    wrong = upward_imports(
        [
            ("storage.up", up),
            ("voice_agent.call.sideways", sideways),
            ("voice_agent.call.t", types_only),
        ]
    )
    assert wrong == [
        "up.py:1 imports voice_agent.app",
        "sideways.py:1 imports voice_agent.notify.sms",
    ]
