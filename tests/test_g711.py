"""The codec against the ITU-T G.191 facts: all 256 codes and all 65,536 inputs."""

import json

import numpy as np

from media import g711
from tests.conftest import FIXTURES

FACTS = json.loads((FIXTURES / "codec" / "g711-ulaw.json").read_text())


def test_decode_matches_reference_for_every_code() -> None:
    got = g711.decode(bytes(range(256)))
    assert got.tolist() == FACTS["decode"]


def test_encode_matches_reference_for_every_input() -> None:
    inputs = np.arange(-32768, 32768, dtype=np.int16)
    got = np.frombuffer(g711.encode(inputs), dtype=np.uint8)
    expected = np.empty(65536, dtype=np.uint8)
    bounds = FACTS["encode_boundaries"]
    for (start, code), nxt in zip(bounds, [*bounds[1:], [32768, None]], strict=True):
        expected[start + 32768 : nxt[0] + 32768] = code
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, (
        f"{mismatches.size} inputs differ, first at {mismatches[0] - 32768}"
    )


def test_twilio_silence_bytes_decode_to_zero() -> None:
    assert g711.decode(bytes([0xFF, 0x7F])).tolist() == [0, 0]


def test_every_code_survives_decode_then_encode() -> None:
    codes = np.arange(256, dtype=np.uint8)
    again = np.frombuffer(g711.encode(g711.decode(codes.tobytes())), dtype=np.uint8)
    expected = codes.copy()
    expected[0x7F] = 0xFF  # negative zero comes back as positive zero
    assert again.tolist() == expected.tolist()


def test_real_speech_round_trip() -> None:
    # zaf/g711's own encoder rounds near zero differently from G.191, so its file is a
    # realistic signal to round-trip, not a bit-exact reference.
    pcm = np.frombuffer((FIXTURES / "codec" / "zaf-speech-8k.raw").read_bytes(), dtype="<i2")
    theirs = g711.decode((FIXTURES / "codec" / "zaf-speech.ulaw").read_bytes())
    ours = g711.decode(g711.encode(pcm))
    signal = np.sum(pcm.astype(np.float64) ** 2)
    for decoded in (ours, theirs):
        snr = 10 * np.log10(signal / np.sum((pcm - decoded.astype(np.float64)) ** 2))
        assert snr > 30  # mu-law keeps speech at roughly 38 dB SNR
