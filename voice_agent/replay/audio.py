"""The caller's audio as the Twilio stand-in sends it: files loaded as mu-law, and where
the speech in them starts and ends, as the server's endpointer will see it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media import g711
from media.vad import (
    FRAME_SAMPLES,
    Endpointer,
    EndpointerConfig,
    SpeechEnded,
    SpeechPaused,
    SpeechStarted,
    VoiceDetector,
)
from media.wav import AudioFileError, read_wav_phone

FRAME_S = 0.02


FRAME_MS = 20


SILENCE_FRAME = bytes([0xFF, 0x7F]) * (g711.FRAME_BYTES // 2)  # what Twilio sends for silence


def load_turn(path: Path) -> bytes:
    """Caller audio as mu-law bytes, from a WAV or from a JSONL capture's inbound media."""
    if path.suffix == ".jsonl":
        try:
            messages = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            media = [m["media"] for m in messages if m.get("event") == "media"]
            media.sort(key=lambda m: int(m.get("chunk", 0)))
            return b"".join(base64.b64decode(m["payload"]) for m in media)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AudioFileError(f"{path}: not a Twilio capture ({exc})") from exc
    return g711.encode(read_wav_phone(path))


def speech_end_frame(mulaw: bytes) -> int:
    """Index of the frame after the last voiced one: where the caller stops talking."""
    vad, last = VoiceDetector(2), 0
    pcm = g711.decode(mulaw)
    for i in range(len(pcm) // FRAME_SAMPLES):
        if vad.is_speech(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]):
            last = i + 1
    return last


@dataclass(frozen=True)
class SpeechSpan:
    """One stretch of caller speech in a stream, in frames, as the server's endpointer
    (default settings) will see it."""

    start: int  # first voiced frame
    end: int  # the frame after the last voiced one
    decided: int  # the frame at which the hangover has run out: the turn is over


def speech_spans(mulaw: bytes) -> list[SpeechSpan]:
    vad, endpointer = VoiceDetector(2), Endpointer()
    pcm = g711.decode(mulaw)
    spans: list[SpeechSpan] = []
    start = 0
    for i in range(len(pcm) // FRAME_SAMPLES):
        frame = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        event = endpointer.push(frame, vad.is_speech(frame))
        if isinstance(event, SpeechStarted):
            start = event.at_ms // FRAME_MS
        elif isinstance(event, SpeechEnded):
            spans.append(SpeechSpan(start, event.end_ms // FRAME_MS, i + 1))
    last = endpointer.flush()
    if last is not None:
        spans.append(SpeechSpan(start, last.end_ms // FRAME_MS, len(pcm) // FRAME_SAMPLES))
    return spans


def as_paused(pcm: np.ndarray) -> np.ndarray:
    """The audio of the last SpeechPaused, as the session hands it to the transcriber: the
    line is heard for half a second before the caller speaks (as under a greeting), and a
    pause inside a recording (JFK's 600 ms) is taken as the caller going on, as the session
    does when the caller resumes before the answer (the turns are joined)."""
    vad, endpointer = VoiceDetector(), Endpointer(EndpointerConfig(hangover_ms=1000))
    silence = np.zeros(4000, np.int16)
    pcm = np.concatenate([silence, pcm, silence, silence])  # the line before and after
    last = pcm
    for i in range(len(pcm) // FRAME_SAMPLES):
        frame = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        event = endpointer.push(frame, vad.is_speech(frame))
        if isinstance(event, SpeechPaused):
            last = event.audio
    return last
