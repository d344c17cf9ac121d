"""Call recording, only when the business has it enabled: the stereo timeline (caller left,
agent right), encryption at rest, crash safety, and end to end against a real server,
including `voice-agent replay --from-call`, which turns a recorded call into a new one."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import struct
import subprocess
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from media import g711
from media.recorder import StereoRecorder
from media.wav import read_wav_phone
from storage.businesses import BusinessStore
from storage.db import make_engine, session_factory
from storage.models import Call
from storage.recordings import (
    MAGIC,
    EncryptedWriter,
    RecordingError,
    RecordingStore,
    decrypted_pcm,
    decrypted_wav,
    load_key,
    recording_json,
)
from tests.conftest import AUDIO, MANIFEST, ROOT, RunningServer, ServerThread, wait_stored
from tests.test_session import (
    Echo,
    Feeder,
    GatedTranscriber,
    SentLog,
    answers_sent,
    echo_marks,
    settle,
    speech,
)
from tests.textnorm import normalize, wer
from transcripts.scheduler import TranscriptionScheduler
from voice_agent.call.session import CallSession, Engines
from voice_agent.replay.audio import load_turn, speech_end_frame
from voice_agent.replay.caller import caller_turn, wait_for_answer
from voice_agent.replay.calls import place_call
from voice_agent.replay.peer import TwilioPeer, connect_stream, ring
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker

TEXT = {name: turn["text"] for name, turn in MANIFEST["turns"].items()}
KEY = bytes(range(32))
SECOND = 8000 * 4  # bytes of interleaved stereo int16 per second


class MemoryWriter:
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, pcm: bytes) -> None:
        self.data += pcm

    def close(self) -> None:
        self.closed = True

    def stereo(self) -> np.ndarray:
        return np.frombuffer(bytes(self.data), dtype="<i2").reshape(-1, 2)


def frame(value: int) -> np.ndarray:
    return np.full(160, value, dtype=np.int16)


def stereo_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").reshape(-1, 2)


# ---- the timeline --------------------------------------------------------------------


def test_caller_left_agent_right_from_the_frame_after_it_was_sent() -> None:
    out = MemoryWriter()
    rec = StereoRecorder(out)
    rec.caller_frame(frame(1))
    rec.caller_frame(frame(2))
    agent = np.arange(1, 401, dtype=np.int16)  # 50 ms: plays over the next 2.5 frames
    rec.agent_audio(agent)
    for k in range(3, 7):
        rec.caller_frame(frame(k))
    rec.close()
    assert out.closed
    s = out.stereo()
    assert len(s) == 6 * 160
    assert np.array_equal(s[:, 0], np.repeat(np.arange(1, 7, dtype=np.int16), 160))
    right = np.zeros(6 * 160, np.int16)
    right[320:720] = agent  # not before it was sent, then continuously, then silence
    assert np.array_equal(s[:, 1], right)


def test_agent_audio_queues_behind_what_is_still_playing() -> None:
    out = MemoryWriter()
    rec = StereoRecorder(out)
    rec.agent_audio(np.full(240, 7, np.int16))
    rec.caller_frame(frame(0))
    rec.agent_audio(np.full(100, 9, np.int16))  # sent while the first is still playing
    rec.caller_frame(frame(0))
    rec.caller_frame(frame(0))
    rec.close()
    right = out.stereo()[:, 1]
    assert np.array_equal(right[:240], np.full(240, 7)) and np.array_equal(
        right[240:340], [9] * 100
    )
    assert not right[340:].any()


def test_clear_drops_the_agent_audio_the_caller_never_heard() -> None:
    out = MemoryWriter()
    rec = StereoRecorder(out)
    rec.agent_audio(np.full(8000, 5, np.int16))  # a second of speech queued at Twilio
    rec.caller_frame(frame(1))
    rec.caller_frame(frame(1))
    rec.clear()  # barge-in
    assert rec.agent_queued == 0
    rec.caller_frame(frame(1))
    rec.agent_audio(np.full(160, 6, np.int16))  # the next answer plays at once
    rec.caller_frame(frame(1))
    rec.caller_frame(frame(1))
    rec.close()
    right = out.stereo()[:, 1]
    assert np.array_equal(right[:320], [5] * 320)
    assert not right[320:480].any()
    assert np.array_equal(right[480:640], [6] * 160) and not right[640:].any()


def test_audio_queued_at_the_end_was_not_heard_and_is_not_recorded() -> None:
    out = MemoryWriter()
    rec = StereoRecorder(out)
    rec.caller_frame(frame(1))
    rec.agent_audio(np.full(4000, 5, np.int16))
    rec.caller_frame(frame(1))
    rec.close()
    rec.caller_frame(frame(1))  # after close: ignored
    assert len(out.stereo()) == 320 and (out.stereo()[160:, 1] == 5).all()


def test_blocks_of_a_second_go_to_the_writer_in_order_from_a_background_thread(
    tmp_path: Path,
) -> None:
    writer = EncryptedWriter(tmp_path / "a.rec", KEY)
    rec = StereoRecorder(writer, background=True)
    rng = np.random.default_rng(1)
    caller = rng.integers(-3000, 3000, 160 * 175, dtype=np.int16)  # 3.5 s
    agent = rng.integers(-3000, 3000, 8000, dtype=np.int16)
    for i in range(175):
        if i == 60:
            rec.agent_audio(agent)
        rec.caller_frame(caller[i * 160 : (i + 1) * 160])
    rec.close()
    s = stereo_of(b"".join(decrypted_pcm(writer.path, KEY)))
    assert np.array_equal(s[:, 0], caller)
    assert np.array_equal(s[60 * 160 : 60 * 160 + 8000, 1], agent)
    assert not s[: 60 * 160, 1].any() and not s[60 * 160 + 8000 :, 1].any()
    assert writer.duration_s == pytest.approx(3.5) and rec.duration_s == pytest.approx(3.5)
    records = _record_sizes(writer.path)
    assert records == [SECOND + 28] * 3 + [SECOND // 2 + 28], "one record per second"


def test_a_failing_disk_stops_the_recording_not_the_call(tmp_path: Path) -> None:
    class Full(MemoryWriter):
        def write(self, pcm: bytes) -> None:
            raise OSError(28, "No space left on device")

    rec = StereoRecorder(Full(), background=True)
    for _ in range(120):
        rec.caller_frame(frame(1))
    rec.close()
    assert isinstance(rec.error, OSError)


def _record_sizes(path: Path) -> list[int]:
    data = path.read_bytes()[len(MAGIC) :]
    sizes = []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        sizes.append(size)
        data = data[4 + size :]
    return sizes


# ---- at rest: crash safety and tampering ----------------------------------------------

CRASH = """
import os, sys
import numpy as np
from media.recorder import StereoRecorder
from storage.recordings import EncryptedWriter
rec = StereoRecorder(EncryptedWriter(__import__("pathlib").Path(sys.argv[1]), bytes(range(32))))
for i in range(175):  # 3.5 s, then the process dies without closing anything
    rec.caller_frame(np.full(160, i, dtype=np.int16))
os._exit(0)
"""


def test_a_crash_loses_at_most_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "crashed.rec"
    subprocess.run([sys.executable, "-c", CRASH, str(path)], check=True, cwd=ROOT, timeout=60)
    s = stereo_of(b"".join(decrypted_pcm(path, KEY)))
    assert len(s) == 3 * 8000, "every complete one-second record survives"
    assert np.array_equal(s[:, 0], np.repeat(np.arange(150, dtype=np.int16), 160))
    # A crash in the middle of writing a record: the ones before it still read.
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    assert len(b"".join(decrypted_pcm(path, KEY))) == 2 * SECOND
    with open(path, "r+b") as f:
        f.truncate(len(MAGIC) + 2 * (4 + 12 + SECOND + 16) + 2)  # mid-header
    assert len(b"".join(decrypted_pcm(path, KEY))) == 2 * SECOND


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    writer = EncryptedWriter(tmp_path / "sealed.rec", KEY)
    rec = StereoRecorder(writer)
    for i in range(150):
        rec.caller_frame(np.full(160, i * 11, dtype=np.int16))
    rec.close()
    return writer.path


def test_the_file_is_not_readable_as_audio(sealed: Path) -> None:
    raw = sealed.read_bytes()
    assert raw.startswith(MAGIC) and b"RIFF" not in raw
    plain = b"".join(decrypted_pcm(sealed, KEY))
    for at in range(0, len(plain) - 64, 4000):
        assert plain[at : at + 64] not in raw


def test_a_tampered_byte_fails_to_decrypt(sealed: Path) -> None:
    raw = bytearray(sealed.read_bytes())
    raw[len(MAGIC) + 4 + 12 + SECOND + 100] ^= 0x01  # in the second record's ciphertext
    sealed.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="record 1"):
        list(decrypted_pcm(sealed, KEY))
    with pytest.raises(RecordingError):
        list(decrypted_wav(sealed, KEY))  # no header is produced for a bad file


def test_swapped_records_fail_to_decrypt(sealed: Path) -> None:
    raw = sealed.read_bytes()
    body, n = raw[len(MAGIC) :], 4 + 12 + SECOND + 16
    sealed.write_bytes(MAGIC + body[n : 2 * n] + body[:n] + body[2 * n :])
    with pytest.raises(RecordingError, match="record 0"):
        list(decrypted_pcm(sealed, KEY))


def test_the_wrong_key_fails_to_decrypt(sealed: Path) -> None:
    with pytest.raises(RecordingError):
        list(decrypted_pcm(sealed, bytes(32)))


def test_a_corrupt_size_neither_allocates_gigabytes_nor_passes(sealed: Path) -> None:
    raw = bytearray(sealed.read_bytes())
    second = len(MAGIC) + 4 + 12 + SECOND + 16
    raw[second : second + 4] = struct.pack(">I", 0xFFFFFFF0)  # looks like a torn record
    sealed.write_bytes(bytes(raw))
    assert len(b"".join(decrypted_pcm(sealed, KEY))) == SECOND
    raw[second : second + 4] = struct.pack(">I", 3)
    sealed.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="malformed"):
        list(decrypted_pcm(sealed, KEY))


def test_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "x.rec"
    path.write_bytes(b"RIFF....WAVEfmt ")
    with pytest.raises(RecordingError, match="not a recording"):
        list(decrypted_pcm(path, KEY))


def test_keys_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    env = base64.b64encode(KEY).decode()
    assert load_key(env, tmp_path / "unused.key") == KEY
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(ValueError, match="32 bytes"):
        load_key(base64.b64encode(b"short").decode(), tmp_path / "k")
    with pytest.raises(RecordingError, match="no recording key"):
        load_key(None, tmp_path / "missing.key", create=False)
    made = load_key(None, tmp_path / "made.key")
    assert (tmp_path / "made.key").stat().st_mode & 0o777 == 0o600
    assert load_key(None, tmp_path / "made.key", create=False) == made
    (tmp_path / "bad.key").write_text("bm90IGEga2V5")
    with pytest.raises(ValueError, match="32 bytes"):
        load_key(None, tmp_path / "bad.key")


# ---- the session: what is sent goes right, barge-in clears it -------------------------


class LongTone:
    def synthesize(self, text: str) -> np.ndarray:
        return (np.sin(np.arange(8000 * 4) / 3) * 8000).astype(np.int16)  # 4 s per sentence


async def test_the_session_records_what_was_sent_and_clears_it_on_barge_in() -> None:
    out = MemoryWriter()
    sent: list[dict] = []
    stt = GatedTranscriber()
    stt.gate.set()
    session = CallSession(
        call_sid="CA1",
        policy=Echo(),
        engines=Engines(TranscriptionScheduler(stt), LongTone()),
        port=SentLog(sent),
        recorder=StereoRecorder(out),
    )
    feeder = Feeder(session)
    await session.start()
    await settle(sent, lambda s: any(m["event"] == "mark" for m in s))
    await feeder.silence(1000)  # the greeting plays for a second...
    mulaw = speech("sink-clogged.wav")
    await feeder.feed(mulaw)  # ...then the caller talks over it
    assert any(m["event"] == "clear" for m in sent)
    await feeder.silence(600)  # the end of the turn...
    await settle(sent, lambda s: answers_sent(s) == 2)  # ...answered
    await feeder.silence(400)
    echo_marks(session, sent)
    await session.finish(0)
    assert out.closed
    s = out.stereo()
    caller = g711.decode(mulaw[: len(mulaw) // 160 * 160])
    assert np.array_equal(s[50 * 160 : 50 * 160 + len(caller), 0], caller)
    voiced = np.abs(s[:, 1].astype(np.int32)).reshape(-1, 160).max(axis=1) > 1000
    cut = 50 + int(np.argmin(voiced[50:]))
    assert voiced[:cut].all(), "the greeting, from the first frame after it was sent"
    spoke = 50 + speech_end_frame(mulaw)
    assert cut < spoke - 20, f"cut off at the barge-in, not played to the end ({cut})"
    assert not voiced[cut:spoke].any(), "what was queued at the barge-in is never heard"
    assert voiced[spoke:].any(), "the answer after the caller's words"


async def test_without_a_recorder_nothing_is_kept() -> None:
    stt = GatedTranscriber()
    stt.gate.set()
    session = CallSession(
        call_sid="CA2",
        policy=Echo(),
        engines=Engines(TranscriptionScheduler(stt), LongTone()),
        port=SentLog([]),
    )
    assert session.recorder is None
    await session.start()
    await Feeder(session).silence(200)
    await session.finish(0)


# ---- end to end ----------------------------------------------------------------------

TOKEN = "test-recording-token-5678"
QUIET_LINE = "+15550100300"


@dataclass
class Env:
    server: RunningServer
    recordings: RecordingStore

    def engine(self):  # type: ignore[no-untyped-def]
        return make_engine(self.server.settings.resolved_database_url())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A server of its own: the demo business records its calls, a second one does not."""
    data = tmp_path_factory.mktemp("recording-data")
    settings = Settings(data_dir=data, twilio_auth_token=TOKEN)
    thread = ServerThread(settings)
    with thread as url:
        engine = make_engine(settings.resolved_database_url())
        businesses = BusinessStore(engine)
        businesses.import_yaml(1, "recording_enabled: true\n")
        quiet = businesses.add("Quiet Pipes", QUIET_LINE, "America/New_York")
        businesses.import_yaml(quiet, "recording_enabled: false\n")
        key = load_key(None, data / "recording.key", create=False)
        server = RunningServer(url=url, settings=settings, app=thread.app)
        yield Env(server, RecordingStore(engine, data / "recordings", key))


@dataclass
class RecordedCall:
    call_sid: str
    sent: list[bytes]  # every inbound frame, in order
    turns: list[tuple[int, int, int]]  # (first frame, speech end frame, last frame + 1)
    agent_frames: list[bytes]
    stored: dict


def capture(peer: TwilioPeer) -> list[bytes]:
    sent: list[bytes] = []
    send_audio = peer.send_audio

    async def recorded_send(mulaw: bytes) -> None:
        sent.append(mulaw)
        await send_audio(mulaw)

    peer.send_audio = recorded_send  # type: ignore[method-assign]
    return sent


@pytest.fixture(scope="module")
async def recorded(env: Env) -> RecordedCall:
    """Three turns at real-time pace, so that what Twilio "plays" is where it would be."""
    server = env.server
    signer = SignatureChecker(TOKEN)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, server.url, "+15555550140", "+15550100200")
    turns = []
    async with connect_stream(ringing, signer) as peer:
        sent = capture(peer)
        assert await wait_for_answer(peer, 30)
        for name in ("sink-clogged.wav", "name-maria.wav", "goodbye.wav"):
            mulaw = load_turn(AUDIO / name)
            first = len(sent)
            turn = await caller_turn(peer, name, mulaw, 30)
            assert turn.latency_ms is not None
            turns.append((first, first + speech_end_frame(mulaw), len(sent)))
        await asyncio.wait_for(peer.closed.wait(), 10)  # the agent said goodbye
    stored = await wait_stored(server, ringing.call_sid)
    return RecordedCall(ringing.call_sid, sent, turns, peer.agent_frames, stored)


async def test_a_recorded_call_is_announced_encrypted_and_complete(
    env: Env, recorded: RecordedCall
) -> None:
    greeting = recorded.stored["transcript"][0]
    assert greeting["speaker"] == "agent" and greeting["text"].endswith(
        "This call may be recorded."
    )
    found = env.recordings.all_for_call(recorded.call_sid)
    assert len(found) == 1
    info = found[0]
    assert info.path.is_relative_to(env.server.settings.data_dir / "recordings")
    assert info.bytes == info.path.stat().st_size and info.path.stat().st_mode & 0o777 == 0o600

    # On disk: nothing a WAV reader, or a grep for the caller's audio, would find.
    raw = info.path.read_bytes()
    assert raw.startswith(MAGIC) and not raw.startswith(b"RIFF")
    mulaw = b"".join(recorded.sent)
    pcm = g711.decode(mulaw)
    loud = int(np.argmax(np.abs(pcm) > 3000))
    for run in (pcm[loud : loud + 256].tobytes(), mulaw[loud : loud + 256]):
        assert run not in raw
    interleaved = np.stack([pcm, np.zeros_like(pcm)], axis=1)[loud : loud + 64].tobytes()
    assert interleaved not in raw

    # Decrypted: a stereo 8 kHz WAV, caller left exactly as received, agent right.
    wav = b"".join(env.recordings.wav(info))
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        s = stereo_of(w.readframes(w.getnframes()))
    assert_received(s[:, 0], pcm)
    assert info.duration_s == pytest.approx(len(pcm) / 8000, abs=0.01)
    right = s[:, 1].astype(np.float64)
    agent = g711.decode(b"".join(recorded.agent_frames)).astype(np.float64)
    assert np.sum(right**2) == pytest.approx(np.sum(agent**2), rel=0.1), "all of it played"
    level = np.sqrt(np.mean(right[: len(right) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    first_turn = recorded.turns[0][0]
    assert (level[:first_turn] > 300).sum() * 0.02 > 2, "the greeting, before the caller spoke"
    for start, speech_end, end in recorded.turns:
        quiet = level[start + 5 : speech_end]
        assert (quiet < 50).all(), "the agent is quiet while the caller talks"
        assert (level[speech_end:end] > 300).sum() * 0.02 > 1, "and answers after"

    stt = env.server.services.engines.transcriber
    heard, _ = await stt.transcribe(s[: first_turn * 160, 1].copy())
    assert "recorded" in heard.text.lower(), heard
    start, _, end = recorded.turns[0]
    caller, _ = await stt.transcribe(s[start * 160 : end * 160, 0].copy())
    caller_text = caller.text
    assert wer(TEXT["sink-clogged.wav"], caller_text) <= 0.2, caller_text


async def test_recording_json_for_calls_show(env: Env, recorded: RecordedCall) -> None:
    sessions = session_factory(env.engine())
    with sessions() as s:
        call_id = s.scalar(select(Call.id).where(Call.call_sid == recorded.call_sid))
        shown = recording_json(s, call_id)
        other = s.scalar(select(Call.id).where(Call.call_sid != recorded.call_sid).limit(1))
        none = recording_json(s, other) if other else None
    info = env.recordings.for_call(recorded.call_sid)
    assert info is not None and shown is not None
    assert set(shown) == {"duration_s", "bytes", "created_at"}
    assert shown["bytes"] == info.bytes and shown["duration_s"] == info.duration_s
    assert shown["created_at"].endswith("+00:00")
    assert none is None


def assert_received(left: np.ndarray, sent: np.ndarray, slack_frames: int = 5) -> None:
    """The caller channel is every inbound frame, in order, and nothing else. The last few
    frames the client sent may not have reached the server before the socket closed."""
    assert len(sent) - slack_frames * 160 <= len(left) <= len(sent)
    assert np.array_equal(left, sent[: len(left)])


def files_under(root: Path) -> set[str]:
    """Every file but the database's own (SQLite journals come and go)."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("voice-agent.db")
    }


async def test_without_recording_enabled_nothing_reaches_the_disk(env: Env) -> None:
    data = env.server.settings.data_dir
    before = files_under(data)
    turns = [AUDIO / "hours-question.wav", AUDIO / "goodbye.wav"]
    result = await place_call(env.server.url, TOKEN, turns, line=QUIET_LINE, fast=True)
    call = await wait_stored(env.server, result.call_sid)
    assert result.greeted and "recorded" not in call["transcript"][0]["text"]
    assert files_under(data) == before
    assert env.recordings.all_for_call(result.call_sid) == []


async def test_a_dropped_socket_still_keeps_the_recording(env: Env) -> None:
    signer = SignatureChecker(TOKEN)
    async with httpx.AsyncClient() as http:
        ringing = await ring(http, signer, env.server.url, "+15555550141", "+15550100200")
    mulaw = load_turn(AUDIO / "billing-question.wav")
    async with connect_stream(ringing, signer, fast=True) as peer:
        sent = capture(peer)
        assert await wait_for_answer(peer, 30)
        for i in range(0, len(mulaw) // 2 // 160 * 160, 160):
            await peer.send_audio(mulaw[i : i + 160])
        peer.ws.transport.abort()  # no stop, no close frame
        await peer.closed.wait()
    await wait_stored(env.server, ringing.call_sid)
    info = env.recordings.for_call(ringing.call_sid)
    assert info is not None
    s = stereo_of(b"".join(env.recordings.pcm(info)))
    assert_received(s[:, 0], g711.decode(b"".join(sent)), slack_frames=50)


def cli(env: Env, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    variables = {
        "VOICE_AGENT_DATA_DIR": str(env.server.settings.data_dir),
        "TWILIO_AUTH_TOKEN": TOKEN,
    }
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RECORDING_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "voice_agent.cli.main", "replay", *args],
        capture_output=True,
        text=True,
        env={**environ, **variables},
        cwd=ROOT,
        timeout=timeout,
    )


async def test_replay_from_call_places_the_recorded_caller_again(
    env: Env, recorded: RecordedCall, tmp_path: Path
) -> None:
    fixture = tmp_path / "caller.wav"
    done = await asyncio.to_thread(
        cli,
        env,
        "--from-call",
        recorded.call_sid,
        "--url",
        env.server.url,
        "--save-caller-audio",
        str(fixture),
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    new_sid = next(
        line.split()[1].rstrip(":")
        for line in done.stdout.splitlines()
        if "Twilio was told" in line
    )
    assert new_sid != recorded.call_sid
    replayed = await wait_stored(env.server, new_sid)

    def caller_text(call: dict) -> str:
        return " ".join(s["text"] for s in call["transcript"] if s["speaker"] == "caller")

    original = caller_text(recorded.stored)
    # Both transcripts are Whisper's through the live pipeline, where a turn cut a little
    # differently can be heard a little differently: measured 0.0 (2 runs); a word or two of
    # the 18 may differ on a loaded machine, another call's words score ~1.
    assert wer(original, caller_text(replayed)) <= 0.25, (
        normalize(original),
        normalize(caller_text(replayed)),
    )
    assert replayed["outcome"] == recorded.stored["outcome"]
    assert replayed["to"] == recorded.stored["to"] and replayed["from"] == "+15555550123"
    # The fixture is the caller channel, as a plain mono WAV.
    info = env.recordings.for_call(recorded.call_sid)
    assert info is not None
    left = stereo_of(b"".join(env.recordings.pcm(info)))[:, 0]
    assert np.array_equal(read_wav_phone(fixture), left)


async def test_replay_from_call_refuses_a_call_without_a_recording(env: Env) -> None:
    result = await place_call(
        env.server.url, TOKEN, [AUDIO / "goodbye.wav"], line=QUIET_LINE, fast=True
    )
    await wait_stored(env.server, result.call_sid)
    sid = result.call_sid
    done = await asyncio.to_thread(cli, env, "--from-call", sid, "--url", env.server.url)
    assert done.returncode == 1 and f"call {sid} has no recording" in done.stderr, done.stderr
    assert "Twilio was told" not in done.stdout, "no call was placed"
    missing = await asyncio.to_thread(cli, env, "--from-call", "CAnope")
    assert missing.returncode == 1 and "no call CAnope" in missing.stderr
    both = await asyncio.to_thread(cli, env, "--from-call", sid, str(AUDIO / "goodbye.wav"))
    assert both.returncode == 2
