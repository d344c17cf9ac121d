"""WS /twilio/media-stream: handshake checks, the receive loop, bad-input accounting, and
finalizing the call however the socket ends. Twilio's messages stop here: the call core
(voice_agent.call) is driven by plain calls, and speaks through a TwilioPort."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy.exc import SQLAlchemyError

from media.recorder import StereoRecorder
from routing.local import LocalPolicy
from routing.policy import Policy
from routing.tools import ReceptionTools
from storage.calls import SegmentRecord
from storage.profiles import BusinessProfile
from storage.recordings import EncryptedWriter
from transcripts.vocabulary import vocabulary_prompt
from voice_agent.call.session import CallSession
from voice_agent.services import Services
from voice_agent.twilio import protocol as wire
from voice_agent.twilio.line_state import TwilioState, twilio_state
from voice_agent.twilio.signatures import public_url
from voice_agent.twilio.stream_port import TwilioPort

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
FINALIZE_S = 10.0


class BadInput:
    """Counts malformed frames per call; logs each kind once so a flood cannot flood logs."""

    def __init__(self, call_label: str, limit: int) -> None:
        self.counts: Counter[str] = Counter()
        self.label, self.limit = call_label, limit

    def add(self, kind: str, detail: str) -> bool:
        """Returns True when the flood limit is reached."""
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            log.warning("stream %s: bad message (%s): %s", self.label, kind, detail[:200])
        return self.total >= self.limit

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def media_stream(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    twilio = twilio_state(ws)
    url = public_url(ws.url, services.settings.public_base_url)
    if not twilio.signatures.valid(url, {}, ws.headers.get("x-twilio-signature")):
        log.warning("media stream handshake rejected: bad or missing X-Twilio-Signature")
        await ws.close(code=POLICY_VIOLATION, reason="invalid signature")
        return
    await ws.accept()
    bad = BadInput("(before start)", services.settings.max_bad_messages)
    try:
        start = await asyncio.wait_for(
            _await_start(ws, bad), services.settings.stream_start_timeout_s
        )
    except TimeoutError:
        log.warning("media stream closed: no start message")
        await ws.close(code=POLICY_VIOLATION, reason="no start message")
        return
    if start is None:
        return
    info = start.start
    token = info.custom_parameters.get("token", "")
    if not await services.live.tokens.redeem(token, info.call_sid):
        log.warning("stream for call %s rejected: missing or used stream token", info.call_sid)
        await ws.close(code=POLICY_VIOLATION, reason="invalid stream token")
        return
    await services.ready.wait()
    try:
        context = await asyncio.to_thread(services.calls.call_context, info.call_sid)
        if context is not None:
            await asyncio.to_thread(services.calls.mark_in_progress, info.call_sid, info.stream_sid)
    except SQLAlchemyError as exc:
        # No business, no record: end the stream; /twilio/stream-ended apologises in TwiML.
        log.error("call %s: database unavailable at stream start (%s)", info.call_sid, exc)
        await ws.close(code=INTERNAL_ERROR, reason="database unavailable")
        return
    if context is None:  # the token was valid, so the row existed; deleted since?
        await ws.close(code=POLICY_VIOLATION, reason="unknown call")
        return
    business, caller_number = context
    bad.label = info.call_sid
    await services.live.registry.add(info.call_sid, {"business_id": business.id})

    def publish(event: str, data: dict) -> None:
        services.notifier.publish(business, event, data)

    started_at = datetime.now(UTC)

    def on_line(line: SegmentRecord) -> None:  # one live event per line, as it is stored
        publish(
            "call.transcript",
            {
                "call_sid": info.call_sid,
                "speaker": line.speaker,
                "text": line.text,
                "start_ms": line.start_ms,
                "end_ms": line.end_ms,
            },
        )
        services.lines.add(info.call_sid, line, started_at)

    publish("call.started", {"call_sid": info.call_sid, "from": caller_number, "to": business.line})

    tools = ReceptionTools(business, info.call_sid, caller_number, services.reception, publish)
    opening = None
    if info.custom_parameters.get("mode") == "message":
        # Back from a <Dial> nobody answered: the scripted message flow, whatever the policy.
        local = LocalPolicy(business, tools)
        policy: Policy = local
        try:
            handoff = await asyncio.to_thread(services.reception.handoff_for_call, info.call_sid)
        except SQLAlchemyError:
            handoff = None
        opening = local.after_missed_transfer(handoff.reason if handoff else "call back")
    else:
        policy = services.policy_factory(business, tools)
    writer = await _recording_writer(services, business, info.call_sid)
    port = TwilioPort(ws, info.stream_sid)
    session = CallSession(
        call_sid=info.call_sid,
        policy=policy,
        engines=services.engines,
        port=port,
        config=services.session_config,
        recorder=StereoRecorder(writer, background=True) if writer is not None else None,
        on_line=on_line,
        started_at=started_at,
        vocabulary=business_vocabulary(business),
    )
    services.sessions[info.call_sid] = session
    try:
        await session.start(opening)
        await _receive(ws, session, bad)
    except (WebSocketDisconnect, RuntimeError) as exc:
        log.info("call %s: stream ended (%s)", info.call_sid, type(exc).__name__)
    finally:
        # Shielded: a cancelled server task must still write the call record.
        try:
            await asyncio.shield(
                _finalize(services, twilio, session, info.stream_sid, bad, business, writer, tools)
            )
        finally:
            services.sessions.pop(info.call_sid, None)
            await services.live.registry.remove(info.call_sid)
    await port.hang_up()


def business_vocabulary(business: BusinessProfile) -> str:
    """What this business's callers are likely to say, for the recognizer's prompt."""
    return vocabulary_prompt(
        business.name,
        services=[s.name for s in business.services],
        places=[a for a in business.service_area if not a.isdigit()],
        people=[d.name for d in business.dispatchers],
        extra=business.vocabulary,
    )


async def _recording_writer(
    services: Services, business: BusinessProfile, call_sid: str
) -> EncryptedWriter | None:
    """A new encrypted file for this stream, only when the business records its calls. A
    failure costs the recording, never the call."""
    if not business.recording_enabled:
        return None
    if services.recordings is None:
        log.error("call %s: recording is enabled but no recording store is set up", call_sid)
        return None
    try:
        return await asyncio.to_thread(services.recordings.writer, call_sid)
    except Exception:
        log.exception("call %s: could not start the recording", call_sid)
        return None


async def _messages(ws: WebSocket, bad: BadInput) -> AsyncIterator[wire.Message]:
    """The stream's messages, parsed. A malformed one is counted and skipped; at the flood
    limit the stream is closed and the messages end. A disconnect is raised."""
    while True:
        try:
            yield wire.parse(await _receive_frame(ws))
        except wire.ProtocolError as exc:
            if bad.add(exc.kind, exc.detail):
                await _too_many(ws)
                return


async def _too_many(ws: WebSocket) -> None:
    await ws.close(code=POLICY_VIOLATION, reason="too many bad messages")


async def _await_start(ws: WebSocket, bad: BadInput) -> wire.Start | None:
    with contextlib.suppress(WebSocketDisconnect):
        async with contextlib.aclosing(_messages(ws, bad)) as messages:
            async for msg in messages:
                if isinstance(msg, wire.Start):
                    return msg
                if isinstance(msg, wire.Stop):
                    return None
                if not isinstance(msg, wire.Connected) and bad.add("before_start", msg.event):
                    await _too_many(ws)
                    return None
    return None


async def _receive(ws: WebSocket, session: CallSession, bad: BadInput) -> None:
    async with contextlib.aclosing(_messages(ws, bad)) as messages:
        async for msg in messages:
            match msg:
                case wire.MediaFrame() as m:
                    if len(m.payload) != 160:
                        bad.add("payload_size", f"{len(m.payload)} bytes")  # kept all the same
                    session.on_audio(m.chunk, m.payload)
                case wire.Mark(mark=m):
                    session.on_mark(m.name)
                case wire.Dtmf(dtmf=d):
                    session.on_dtmf(d.digit)
                case wire.Stop():
                    return
                case _:
                    bad.add("unexpected", msg.event)


async def _receive_frame(ws: WebSocket) -> str | bytes:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message.get("text") or message.get("bytes") or b""


async def _finalize(
    services: Services,
    twilio: TwilioState,
    session: CallSession,
    stream_sid: str,
    bad: BadInput,
    business: BusinessProfile,
    writer: EncryptedWriter | None = None,
    tools: ReceptionTools | None = None,
) -> None:
    try:
        record = await session.finish(bad.total, stream_sid)  # seals the recording
        if tools is not None:  # messages the database did not take go with the record
            record.messages = tools.unsaved_messages()
    finally:
        if writer is not None:  # before the call is final: its record is then complete
            await _keep_recording(services, session, writer)
    if session.transferred:  # /twilio/stream-ended can dial even if the database is gone
        twilio.transfers.remember(session.call_sid, business)
    await services.lines.flush()  # no line written live may land after the final record
    try:
        # Bounded: a connection to a database that stopped answering can wait for ever;
        # the record then goes to the journal (finalize stores one record once, so the
        # late write and the journal's replay cannot store it twice).
        await asyncio.wait_for(asyncio.to_thread(services.calls.finalize, record), FINALIZE_S)
    except Exception:
        # Nothing is lost: the journal keeps it until the database is back.
        log.exception("call %s: could not store the finished call", session.call_sid)
        await asyncio.to_thread(services.journal.write, record)
    for turn in record.turns:
        services.metrics.observe_turn(turn)
    publish = services.notifier.publish
    publish(business, "call.ended", {"call_sid": record.call_sid, "outcome": record.outcome})
    if not session.transferred:  # a transfer's call goes on with the dispatcher
        summary = {
            "call_sid": record.call_sid,
            "outcome": record.outcome,
            "ended_at": record.ended_at.isoformat(),
        }
        publish(business, "call.completed", summary)


async def _keep_recording(
    services: Services, session: CallSession, writer: EncryptedWriter
) -> None:
    """Register the file with the call, however the stream ended. A second stream of the
    same call (a message after an unanswered <Dial>) adds a second recording."""
    assert services.recordings is not None
    try:
        if session.recorder is not None:
            await asyncio.to_thread(session.recorder.close)  # no-op once finish() closed it
        await asyncio.to_thread(services.recordings.keep, session.call_sid, writer)
    except Exception:
        log.exception("call %s: could not store the recording", session.call_sid)
