"""Place a call the way Twilio does: signed webhook, signed WebSocket, mu-law frames at
real-time pace, marks echoed once the agent's audio has "played". One file per caller turn
(a WAV, or a JSONL capture of Twilio messages); the client waits for the agent's whole
answer before the next turn, streaming line silence meanwhile as Twilio does.

Or one continuous stream (`place_stream_call`): the caller channel of a recorded call,
silences and all, sent as it was heard, with the agent answering as it goes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

from media import g711
from voice_agent.replay.audio import load_turn
from voice_agent.replay.caller import (
    LineNoise,
    TurnResult,
    caller_stream,
    caller_turn,
    shown,
    wait_for_answer,
)
from voice_agent.replay.peer import TwilioPeer, connect_stream, post_signed, ring
from voice_agent.settings import Settings
from voice_agent.twilio.signatures import SignatureChecker


@dataclass
class CallResult:
    call_sid: str
    greeted: bool = False
    turns: list[TurnResult] = field(default_factory=list)
    closed_by_agent: bool = False
    after_stream_twiml: str = ""
    agent_audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))


class ReplayError(Exception):
    """Nothing to replay: no such call, no recording, or one that cannot be read."""


@dataclass
class RecordedCaller:
    audio: np.ndarray  # int16, 8 kHz: the caller (left) channel of the recording
    line: str  # the number the call reached
    streams: int  # recordings the call has; the first is the one replayed


def recorded_caller(settings: Settings, call_sid: str) -> RecordedCaller:
    """Decrypt a stored call's recording (same data dir, database and key as the server)
    and take its caller channel."""
    from storage import db
    from storage.calls import CallStore
    from storage.recordings import KEY_FILE, RecordingError, RecordingStore, load_key

    engine = db.make_engine(settings.resolved_database_url())
    try:
        db.upgrade(engine)
        call = CallStore(engine).call_json(call_sid)
        if call is None:
            raise ReplayError(f"no call {call_sid}")
        try:
            key = load_key(settings.recording_key, settings.data_dir / KEY_FILE, create=False)
            store = RecordingStore(engine, settings.data_dir / "recordings", key)
            found = store.all_for_call(call_sid)
            if not found:
                raise ReplayError(
                    f"call {call_sid} has no recording (recording was off for it, or it "
                    "was deleted)"
                )
            pcm = b"".join(store.pcm(found[0]))
        except (RecordingError, ValueError, OSError) as exc:
            raise ReplayError(f"cannot read the recording of call {call_sid}: {exc}") from exc
    finally:
        engine.dispose()
    stereo = np.frombuffer(pcm[: len(pcm) // 4 * 4], dtype="<i2").reshape(-1, 2)
    return RecordedCaller(stereo[:, 0].copy(), call["to"], len(found))


async def place_call(
    base_url: str,
    auth_token: str,
    turns: list[Path],
    *,
    caller: str = "+15555550123",
    line: str = "+15550100200",
    fast: bool = False,
    turn_timeout_s: float = 30.0,
    on_event: Callable[[str], None] | None = None,
    line_noise: LineNoise | None = None,
) -> CallResult:
    """One file per caller turn. `line_noise`: what the caller's line carries when nobody
    speaks (default: Twilio's digital silence)."""
    say = on_event or (lambda _msg: None)
    audio = [load_turn(p) for p in turns]

    async def converse(peer: TwilioPeer, result: CallResult) -> None:
        result.greeted = await wait_for_answer(peer, turn_timeout_s, line_noise=line_noise)
        say(f"agent greeted: {result.greeted}")
        for path, mulaw in zip(turns, audio, strict=True):
            if peer.closed.is_set():
                break
            turn = await caller_turn(peer, path.name, mulaw, turn_timeout_s, line_noise=line_noise)
            result.turns.append(turn)
            say(f"caller turn {path.name}: agent answered after {shown(turn)}")

    return await place_conversation(base_url, auth_token, caller, line, fast, say, converse)


async def place_stream_call(
    base_url: str,
    auth_token: str,
    audio: bytes | np.ndarray,
    *,
    name: str = "caller",
    caller: str = "+15555550123",
    line: str = "+15550100200",
    fast: bool = False,
    turn_timeout_s: float = 30.0,
    on_event: Callable[[str], None] | None = None,
) -> CallResult:
    """One continuous caller stream (mu-law bytes, or int16 PCM at 8 kHz), e.g. the caller
    channel of a recorded call. A TurnResult per stretch of caller speech."""
    say = on_event or (lambda _msg: None)
    mulaw = audio if isinstance(audio, bytes) else g711.encode(np.asarray(audio))

    async def converse(peer: TwilioPeer, result: CallResult) -> None:
        result.greeted, result.turns = await caller_stream(peer, name, mulaw, turn_timeout_s, say)

    return await place_conversation(base_url, auth_token, caller, line, fast, say, converse)


async def place_conversation(
    base_url: str,
    auth_token: str,
    caller: str,
    line: str,
    fast: bool,
    say: Callable[[str], None],
    converse: Callable[[TwilioPeer, CallResult], Awaitable[None]],
) -> CallResult:
    """Ring, open the media stream, let `converse` play the caller, then hang up."""
    signer = SignatureChecker(auth_token)
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            ringing = await ring(http, signer, base_url, caller, line)
        except httpx.TransportError as exc:  # refused, unknown host, timed out
            raise ReplayError(
                f"no voice agent answering at {base_url}: start it with `voice-agent serve` "
                f"(or give its --url) [{type(exc).__name__}]"
            ) from exc
        except httpx.HTTPStatusError as exc:
            raise ReplayError(_refused(base_url, exc.response.status_code)) from exc
        result = CallResult(call_sid=ringing.call_sid)
        if ringing.stream_url is None:
            say(f"the line did not connect a stream: {ringing.twiml}")
            return result
        async with AsyncExitStack() as stack:
            try:
                peer = await stack.enter_async_context(connect_stream(ringing, signer, fast))
            except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                raise ReplayError(
                    f"the voice agent at {base_url} answered the call, but its media stream "
                    f"{ringing.stream_url} cannot be opened ({exc}); is PUBLIC_BASE_URL right?"
                ) from exc
            await converse(peer, result)
            result.closed_by_agent = peer.closed.is_set()
        result.agent_audio = g711.decode(b"".join(peer.agent_frames))
        if ringing.action:
            ended = {**ringing.params, "CallStatus": "in-progress"}
            result.after_stream_twiml = await post_signed(http, signer, ringing.action, ended)
    return result


def _refused(base_url: str, status: int) -> str:
    if status == 403:
        return (
            f"the voice agent at {base_url} refused the signed webhook (403): replay signs "
            "with TWILIO_AUTH_TOKEN, or without it the development token in the data dir; "
            "use the server's (same TWILIO_AUTH_TOKEN or VOICE_AGENT_DATA_DIR)"
        )
    return f"the voice agent at {base_url} answered POST /twilio/voice with HTTP {status}"
