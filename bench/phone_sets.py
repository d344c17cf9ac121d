"""The phone bench's calls: which recordings form the tuning and the held-out set
(fixtures/audio/phone/manifest.json `sets`), and each turn made ready to send: through a
phone line (or not), with where its speech starts and ends by energy in the clean source."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.phoneline import PhoneLine, draw_profile, seed_for
from bench.speech_energy import speech_extent
from media import g711
from media.wav import read_wav_phone

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "fixtures" / "audio"
PHONE = AUDIO / "phone"
SETS = ("tuning", "held_out")


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    turns: tuple[Path, ...]


@dataclass(frozen=True)
class Turn:
    name: str
    mulaw: bytes  # what the server receives
    start: int  # first sample of speech, by energy in the clean recording
    end: int  # the sample after the last speech


@dataclass
class CallPlan:
    """One call to place: its turns as they will be sent, and the line they cross."""

    name: str
    caller: str  # the caller's number
    turns: list[Turn]
    line: PhoneLine | None  # None: a clean line, digital silence between turns

    @property
    def line_noise(self) -> Callable[[], bytes] | None:
        return self.line.noise_frame if self.line is not None else None

    def lead(self, samples: int) -> bytes:
        """`samples` of the line with nobody talking, to send before a turn."""
        if self.line is None or samples <= 0:
            return bytes([g711.SILENCE_CODE]) * max(samples, 0)
        return self.line.carry(np.zeros(samples, np.int16))


def load_set(which: str) -> list[ScriptedCall]:
    """The calls of a set, in manifest order."""
    phone = json.loads((PHONE / "manifest.json").read_text())
    base = json.loads((AUDIO / "manifest.json").read_text())
    where: dict[str, tuple[Path, ...]] = {}
    for c in base["calls"] + base["held_out"]["calls"]:
        where[c["name"]] = tuple(AUDIO / t for t in c["turns"])
    for c in phone["calls"]:
        where[c["name"]] = tuple(PHONE / t for t in c["turns"])
    return [ScriptedCall(n, where[n]) for n in phone["sets"][which]["calls"]]


def prepare_turn(path: Path, line: PhoneLine | None) -> Turn:
    pcm = read_wav_phone(path)
    extent = speech_extent(pcm)  # on the clean recording, before the line
    start, end = (extent.start, extent.end) if extent else (0, len(pcm))
    mulaw = line.carry(pcm) if line is not None else g711.encode(pcm)
    return Turn(path.name, mulaw, start, end)


def plan_call(
    call: ScriptedCall, instance: int, phone_line: bool, seed: int, hum: bool = False
) -> CallPlan:
    """Call number `instance` of a run: its own caller number and its own line."""
    profile = draw_profile(seed_for(seed, call.name, instance), hum)
    line = PhoneLine(profile) if phone_line else None
    turns = [prepare_turn(p, line) for p in call.turns]
    return CallPlan(call.name, f"+1555{instance:07d}", turns, line)
