"""Caller audio files: good ones load at 8 kHz, broken ones are refused with a reason."""

import subprocess
import sys

import numpy as np
import pytest

from media.wav import AudioFileError, read_wav_phone, write_wav
from tests.conftest import AUDIO, FIXTURES

BROKEN = sorted((FIXTURES / "broken").glob("*.wav"))


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_wav_is_rejected_with_a_clear_error(path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AudioFileError, match=path.name):
        read_wav_phone(path)


def test_replay_refuses_a_broken_file_before_calling(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_agent.cli.main",
            "replay",
            str(BROKEN[0]),
            "--url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"VOICE_AGENT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert BROKEN[0].name in proc.stderr and "Traceback" not in proc.stderr


def test_fixture_turns_load_as_8khz(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pcm = read_wav_phone(AUDIO / "name-maria.wav")
    assert pcm.dtype == np.int16 and 0.5 < len(pcm) / 8000 < 5
    # A 16 kHz file is resampled to the phone rate, keeping its duration.
    wide = np.repeat(pcm, 2)
    write_wav(tmp_path / "wide.wav", wide, rate=16000)
    assert abs(len(read_wav_phone(tmp_path / "wide.wav")) - len(wide) // 2) <= 2
