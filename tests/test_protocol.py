"""Every Media Streams message kind, as real streams send them, and what bad input gets."""

import base64
import json

import pytest

from voice_agent.twilio import protocol as wire

STREAM = "3f2c7d58-8a1e-4c55-9f0e-2b7f4f1c9a10"  # older captures carry UUID streamSids


def test_connected() -> None:
    msg = wire.parse('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    assert isinstance(msg, wire.Connected) and msg.version == "1.0.0"


def test_start_with_string_numbers_and_no_custom_parameters() -> None:
    raw = {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": STREAM,
        "start": {
            "streamSid": STREAM,
            "accountSid": "AC1",
            "callSid": "CA1",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "8000", "channels": "1"},
        },
    }
    msg = wire.parse(json.dumps(raw))
    assert isinstance(msg, wire.Start)
    assert msg.sequence_number == 1 and msg.start.stream_sid == STREAM
    assert msg.start.custom_parameters == {} and msg.start.media_format.sample_rate == 8000


def test_start_carries_custom_parameters() -> None:
    raw = {
        "event": "start",
        "start": {
            "streamSid": "MZ1",
            "accountSid": "AC1",
            "callSid": "CA1",
            "customParameters": {"token": "abc"},
        },
    }
    assert wire.parse(json.dumps(raw)).start.custom_parameters == {"token": "abc"}


def test_media_payload_is_decoded() -> None:
    payload = base64.b64encode(bytes([0xFF, 0x7F] * 80)).decode()
    raw = {
        "event": "media",
        "sequenceNumber": "3",
        "streamSid": STREAM,
        "media": {"track": "inbound", "chunk": "2", "timestamp": "140", "payload": payload},
    }
    msg = wire.parse(json.dumps(raw))
    assert isinstance(msg, wire.MediaFrame)
    assert (msg.chunk, msg.timestamp, len(msg.payload), msg.sequence_number) == (2, 140, 160, 3)
    # Integers where Twilio sends strings are numbers too; a missing track is inbound.
    raw["media"] = {"chunk": 2, "timestamp": 140, "payload": payload}
    assert wire.parse(json.dumps(raw)) == wire.MediaFrame(2, 140, msg.payload, "inbound", 3, STREAM)


@pytest.mark.parametrize(
    ("raw", "cls", "check"),
    [
        (
            {
                "event": "mark",
                "sequenceNumber": "9",
                "streamSid": STREAM,
                "mark": {"name": "u1.s0"},
            },
            wire.Mark,
            lambda m: m.mark.name == "u1.s0",
        ),
        (
            {
                "event": "dtmf",
                "streamSid": STREAM,
                "sequenceNumber": "5",
                "dtmf": {"track": "inbound_track", "digit": "1"},
            },
            wire.Dtmf,
            lambda m: m.dtmf.digit == "1",
        ),
        (
            {
                "event": "stop",
                "sequenceNumber": "90",
                "streamSid": STREAM,
                "stop": {"accountSid": "AC1", "callSid": "CA1"},
            },
            wire.Stop,
            lambda m: m.stop.call_sid == "CA1",
        ),
    ],
)
def test_mark_dtmf_stop(raw: dict, cls: type, check) -> None:  # type: ignore[no-untyped-def]
    msg = wire.parse(json.dumps(raw))
    assert isinstance(msg, cls) and check(msg)


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("not json at all", "not_json"),
        (b"\xff\xfe\x00", "not_json"),
        ("[1, 2]", "invalid"),
        ('{"event": "hello"}', "unknown_event"),
        (
            '{"event": "media", "media": {"chunk": "1", "timestamp": "0", "payload": "%%%"}}',
            "invalid",
        ),
        ('{"event": "media", "media": {"chunk": "1", "timestamp": "0", "payload": ""}}', "invalid"),
        (
            '{"event": "media", "media": {"chunk": "x", "timestamp": "0", "payload": "/w=="}}',
            "invalid",
        ),
        ('{"event": "start"}', "invalid"),
        ("x" * (64 * 1024 + 1), "too_large"),
    ],
)
def test_bad_frames_raise_a_named_error(frame: str | bytes, kind: str) -> None:
    with pytest.raises(wire.ProtocolError) as err:
        wire.parse(frame)
    assert err.value.kind == kind


def test_outbound_messages_carry_the_stream_sid() -> None:
    media = json.loads(wire.media(STREAM, b"\xff" * 160))
    assert media == {
        "event": "media",
        "streamSid": STREAM,
        "media": {"payload": base64.b64encode(b"\xff" * 160).decode()},
    }
    assert json.loads(wire.mark(STREAM, "u1.s0")) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "u1.s0"},
    }
    assert json.loads(wire.clear(STREAM)) == {"event": "clear", "streamSid": STREAM}
