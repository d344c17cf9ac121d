"""Build ``fixtures/audio/phone/``: held-out caller scripts for the phone-line bench.

Callers of a plumbing / HVAC / electrical business, spoken by espeak-ng (Debian's
``espeak-ng`` package) in several voices and speeds, so that the voice is not the piper
voice the tests and the tuning use. Nothing here is used to tune the server: the bench
(bench/phone.py --held-out) places these calls to show whether numbers hold on speech the
code never saw.

Each turn is its clauses spoken one by one and joined with a pause (300-700 ms) where a
caller would stop mid-sentence ("My address is ... forty-two Elm Street."): the server must
not take those pauses as the end of the turn. Turns are clean 8 kHz 16-bit mono WAVs with
300 ms of digital silence either side; the bench adds the phone line (bench/phoneline.py).

Also written: ``manifest.json`` (per turn: text, clauses, pauses, voice, speed, source,
licence; the calls; the bench's tuning and held-out sets) and ``LICENSES.md``.

Usage: ``.venv/bin/python scripts/make_phone_calls.py`` (needs ``apt-get install espeak-ng``).
The output is the same on every run with the same espeak-ng version.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import wave
import zlib
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from media.resample import PHONE_RATE, to_int16  # noqa: E402
from media.wav import write_wav  # noqa: E402

OUT_DIR = ROOT / "fixtures" / "audio" / "phone"
PAD_S = 0.3
PEAK_DBFS = -3.0
PAUSE_MS = (300, 700)
SOURCE = "espeak-ng {version} (Debian package) via scripts/make_phone_calls.py"
LICENCE = (
    "generated audio: not covered by espeak-ng's GPL-3.0-or-later (the program's licence "
    "does not extend to its output); the texts are ours, see LICENSES.md"
)

# name -> (espeak-ng voice+variant, words per minute, turns); "|" marks a mid-turn pause.
CALLS: dict[str, tuple[str, int, list[str]]] = {
    "drain-booking": (
        "en-us+m3",
        160,
        [
            "Hi, my shower drain is backed up, | and now the tub won't empty either.",
            "My name is Daniel Brooks.",
            "My address is | forty two Elm Street.",
            "Thursday morning.",
            "Yes.",
            "Yes, please text me.",
            "Thanks, bye.",
        ],
    ),
    "ac-booking": (
        "en-us+f2",
        175,
        [
            "Hello, my air conditioner is blowing warm air, | and it's ninety degrees in here.",
            "It's Priya Shah.",
            "We're at | seven fifteen Maple Drive.",
            "Friday afternoon, | around three if you have it.",
            "That's right.",
            "No thanks, | no texts.",
            "Goodbye.",
        ],
    ),
    "burst-pipe-emergency": (
        "en-gb+m1",
        185,
        [
            "A pipe just burst under my kitchen sink, | there's water everywhere!",
            "Tom Fletcher.",
            "Twenty nine | Harbour Road.",
            "Yes, please hurry.",
            "Bye.",
        ],
    ),
    "gas-smell-emergency": (
        "en+f4",
        165,
        [
            "I can smell gas in the kitchen, | it's really strong.",
            "Yes, we're all outside now.",
            "Three hundred | Lincoln Avenue.",
            "Okay, thank you.",
        ],
    ),
    "no-heat-baby": (
        "en-us+f3",
        150,
        [
            "Our heat went out last night, | and we have a newborn baby in the house.",
            "My name is Angela Reed.",
            "Eighteen | Cedar Lane.",
            "As soon as possible, | today if you can.",
            "Yes.",
            "Yes.",
            "Thank you so much, bye.",
        ],
    ),
    "billing-message": (
        "en-gb-x-rp+m2",
        170,
        [
            "Hi, I'm calling about my bill. | I think I was charged twice for the same visit.",
            "Can someone call me back about it?",
            "Linda Morales.",
            "Five five five, | two one two, | three four four nine.",
            "Any time after four.",
            "That's all, thanks.",
        ],
    ),
    "person-handoff": (
        "en-us+m7",
        155,
        [
            "Can I just talk to a real person, please?",
            "I'd rather speak to someone, | it's about a quote.",
            "Okay, thanks.",
        ],
    ),
    "outlet-booking": (
        "en+m2",
        180,
        [
            "Half the outlets in my living room stopped working, | and the breaker won't reset.",
            "Kevin Walsh.",
            "It's | eight sixty one | Spruce Court.",
            "Monday morning.",
            "Yes, that works.",
            "No.",
            "Bye now.",
        ],
    ),
}


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[3]


def speak(text: str, voice: str, wpm: int) -> np.ndarray:
    """One clause, float at 8 kHz, with espeak's own leading and trailing silence cut."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        # espeak writes a streaming header (length unknown): read what is there.
        raw = w.readframes(2**31 - 1)
    audio = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    audio = audio[voiced[0] : voiced[-1] + 1]
    return np.asarray(soxr.resample(audio, rate, PHONE_RATE), dtype=np.float64)


def pause_s(call: str, turn: int, gap: int) -> float:
    """A stable pause length for one gap of one turn."""
    low, high = PAUSE_MS
    return (low + zlib.crc32(f"{call}/{turn}/{gap}".encode()) % (high - low + 1)) / 1000.0


def build_turn(call: str, k: int, line: str, voice: str, wpm: int) -> tuple[np.ndarray, dict]:
    clauses = [c.strip() for c in line.split("|")]
    pauses = [pause_s(call, k, g) for g in range(len(clauses) - 1)]
    parts: list[np.ndarray] = []
    for i, clause in enumerate(clauses):
        parts.append(speak(clause, voice, wpm))
        if i < len(pauses):
            parts.append(np.zeros(round(pauses[i] * PHONE_RATE)))
    speech = np.concatenate(parts)
    speech *= 10 ** (PEAK_DBFS / 20) / np.max(np.abs(speech))
    pad = np.zeros(round(PAD_S * PHONE_RATE))
    info = {
        "text": " ".join(clauses),
        "clauses": clauses,
        "pauses_ms": [round(p * 1000) for p in pauses],
        "voice": voice,
        "words_per_minute": wpm,
    }
    return np.concatenate([pad, speech, pad]), info


def sets() -> dict:
    base = json.loads((ROOT / "fixtures" / "audio" / "manifest.json").read_text())
    return {
        "tuning": {
            "about": "the piper fixture calls of fixtures/audio/manifest.json `calls`, "
            "through the phone line: what the server's settings were tuned on",
            "calls": [c["name"] for c in base["calls"]],
        },
        "held_out": {
            "about": "never used for tuning: the espeak-ng calls here and the human "
            "recordings of fixtures/audio/manifest.json `held_out`, through the phone line",
            "calls": list(CALLS) + [c["name"] for c in base["held_out"]["calls"]],
        },
    }


LICENSES = """# Licences of fixtures/audio/phone

Generated by `scripts/make_phone_calls.py`.

| files | origin | licence |
|---|---|---|
| every `*.wav` here | synthesized with espeak-ng {version} (Debian package `espeak-ng`), \
voices and speeds in manifest.json; texts written for this project | espeak-ng is \
GPL-3.0-or-later; that licence covers the program, not the audio it generates. The texts \
are part of this project (GPL-3.0-or-later) |
"""


def main() -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: apt-get install -y espeak-ng")
    version = espeak_version()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    turns: dict[str, dict] = {}
    calls = []
    for call, (voice, wpm, lines) in CALLS.items():
        names = []
        for k, line in enumerate(lines, 1):
            audio, info = build_turn(call, k, line, voice, wpm)
            name = f"{call}-{k}.wav"
            write_wav(OUT_DIR / name, to_int16(audio))
            turns[name] = {**info, "source": SOURCE.format(version=version), "licence": LICENCE}
            names.append(name)
        calls.append({"name": call, "turns": names})
    manifest = {"turns": turns, "calls": calls, "sets": sets()}
    (OUT_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (OUT_DIR / "LICENSES.md").write_text(LICENSES.format(version=version))
    seconds = sum((OUT_DIR / t).stat().st_size for t in turns) / (2 * PHONE_RATE)
    print(f"{len(calls)} calls, {len(turns)} turns, {seconds:.0f} s of audio in {OUT_DIR}")


if __name__ == "__main__":
    main()
