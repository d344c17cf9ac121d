"""The recognizer bench's pure parts (bench/stt_engines.py): scoring, its sets and lines, and
the real telephone recordings it reads (fixtures/audio/telephone)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from bench import stt_engines as bench
from bench.phoneline import HUM_BELOW_NOISE_DB, NOISE_DBFS, STEP_DB
from transcripts.vocabulary import MAX_CHARS


def test_turn_errors_use_the_projects_normalisation() -> None:
    assert bench.turn_errors("Bluebird Plumbing and HVAC", "Bluebird Plumbing & HVAC.") == (0, 4)
    assert bench.turn_errors("go forward ten meters", "Go forward 10 meters.") == (0, 5)
    assert bench.turn_errors("Elm Street", "Elm St") == (1, 2)
    assert bench.turn_errors("two nine three four zero", "29340.") == (0, 5)
    assert bench.turn_errors("Yes, please text me.", "") == (4, 4)


def test_corpus_wer_counts_words_not_turns() -> None:
    pairs = [("one two three four", "one two three four"), ("yes", "no")]
    assert bench.corpus_wer(pairs) == pytest.approx(1 / 5)
    assert bench.corpus_wer([]) == 0.0


def test_a_term_counts_only_spelled_as_in_the_vocabulary_and_in_a_row() -> None:
    assert bench.term_found("Quail Hollow Road", "I'm on quail hollow road.")
    assert not bench.term_found("Quail Hollow Road", "I'm on Quail Hall Road.")
    assert not bench.term_found("Dana Whitfield", "Dana, Mr. Whitfield")
    assert bench.term_found("Nguyen", "Mr. Nguyen said")
    assert not bench.term_found("Niamh", "Please tell me")


def test_every_vocab_turn_holds_its_terms_and_the_prompts_hold_them_too() -> None:
    full, names = bench.PROMPTS["full"], bench.PROMPTS["names"]
    assert full and names and bench.PROMPTS["none"] is None
    assert len(full) <= MAX_CHARS and len(names) < len(full)
    assert len(bench.VOCAB_TURNS) >= 20
    assert len({voice for voice, _wpm, _text, _terms in bench.VOCAB_TURNS}) >= 8
    for _voice, _wpm, text, terms in bench.VOCAB_TURNS:
        assert terms
        for term in terms:
            assert bench.term_found(term, text.replace("|", " ")), (term, text)
            assert bench.term_found(term, full), term
    for term in (*bench.PEOPLE, *bench.STREETS, bench.BUSINESS):
        assert bench.term_found(term, names), term
    assert bench.SAY.keys() == bench.SAY_IPA.keys()
    said = " ".join(text for _v, _w, text, _t in bench.VOCAB_TURNS)
    assert all(word in said for word in bench.SAY)
    assert "[[n'i:v]]" in bench.spoken("Please tell Niamh")


def test_the_bad_line_is_the_loudest_noise_the_phone_line_draws() -> None:
    bad, clean = bench.BAD_LINE, bench.CLEAN_LINE
    assert bad.noise_dbfs == max(NOISE_DBFS)
    assert bad.hum_dbfs == bad.noise_dbfs - min(HUM_BELOW_NOISE_DB)
    assert bad.step_db == max(STEP_DB)
    assert clean.hum_dbfs is None and clean.step_db == 0 and clean.noise_dbfs <= -100
    # The two differ only in noise: same level, same (absent) room.
    assert (bad.gain_db, bad.wet) == (clean.gain_db, clean.wet) == (0.0, 0.0)


def test_an_energy_cut_is_the_speech_with_the_endpointers_margins() -> None:
    rate = 8000
    t = np.arange(rate) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    speech = np.concatenate([np.zeros(rate // 2), tone]) + 1e-4 * np.cos(np.arange(3 * rate // 2))
    span = bench.span_of(speech)
    lead = int(bench.LEAD_S * rate)
    assert abs(span[0] - (lead + rate // 2)) <= 80 and abs(span[1] - (lead + 3 * rate // 2)) <= 80
    pcm = bench.over_line(speech, None)
    assert len(pcm) == len(speech) + int((bench.LEAD_S + bench.TAIL_S) * rate)
    sample = bench.Sample("tone", "", pcm, span)
    cut = bench.energy_cut(sample)
    assert len(cut) == span[1] - span[0] + 2 * int(bench.MARGIN_S * rate)
    assert bench.snr_db(speech, pcm) is None  # a clean line has no noise to measure


def test_a_session_cut_joins_the_turns_that_hold_the_speech_and_counts_the_others() -> None:
    sample = next(s for s in bench.human_set(bench.CLEAN_LINE) if s.name == "human-jfk.wav")
    whole = bench.session_cut(sample)
    assert (whole.turns, whole.phantoms) == (1, 0)
    assert len(whole.audio) >= sample.span[1] - sample.span[0]
    noise = np.zeros(8000, np.int16)
    noise[2000:6000] = (3000 * np.sin(np.arange(4000) * 0.3)).astype(np.int16)
    away = bench.Sample("elsewhere", "", noise, (7000, 8000))
    missed = bench.session_cut(away)
    assert missed.turns == 0 and len(missed.audio) == 4000  # half a second of silence


def test_the_human_set_is_every_human_recording_with_its_text() -> None:
    samples = bench.human_set(bench.BAD_LINE)
    assert len(samples) >= 15
    assert all(s.name.startswith("human-") and s.text for s in samples)
    assert all(s.snr_db is not None and 5 < s.snr_db < 40 for s in samples)
    assert all(0 < s.span[0] < s.span[1] <= len(s.pcm) for s in samples)


def test_every_telephone_recording_is_listed_with_its_text_source_and_licence() -> None:
    turns = bench.telephone_manifest()
    files = {p.name for p in bench.TELEPHONE.glob("*.wav")}
    assert files == set(turns) and len(files) >= 30
    licences = (bench.TELEPHONE / "LICENSES.md").read_text()
    for name, info in turns.items():
        assert info["text"] and info["source"] and "CC-BY-SA-3.0" in info["licence"]
        assert name in licences
        with wave.open(str(bench.TELEPHONE / name)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    samples = bench.telephone_set(None)
    assert [s.name for s in samples] == list(turns)
