"""/api/calls: the call list, one call with its transcript, its recording. Reading a
transcript or a recording is audited before anything is returned."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from storage.recordings import RecordingError
from voice_agent.api.deps import Audit, Queries, Reader, Recordings, actor
from voice_agent.api.models import CallDetail, CallSummary, Outcome, Page
from voice_agent.api.params import CallSid, Limit, Offset, e164, missing, when

log = logging.getLogger(__name__)
router = APIRouter(tags=["calls"])


@router.get(
    "/calls",
    response_model=Page[CallSummary],
    summary="List calls, newest first",
)
async def list_calls(
    user: Reader,
    tenant: Queries,
    since: Annotated[
        str | None,
        Query(description="ISO date or date-time; naive ones are in the business's time zone"),
    ] = None,
    until: Annotated[
        str | None, Query(description="ISO date (the whole day counts) or date-time (included)")
    ] = None,
    outcome: Outcome | None = None,
    caller: Annotated[
        str | None, Query(description="the caller's number, E.164 (send `+` as %2B)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    filters = {
        "since": when("since", since),
        "until": when("until", until),
        "outcome": outcome,
        "caller": e164(caller),
    }
    return await asyncio.to_thread(
        tenant.calls, user.business_id, **filters, limit=limit, offset=offset
    )


@router.get(
    "/calls/{call_sid}",
    response_model=CallDetail,
    summary="One call with its transcript, turn timings and outcome (audited)",
    responses=missing("call"),
)
async def get_call(
    request: Request,
    user: Reader,
    tenant: Queries,
    store: Recordings,
    audit: Audit,
    call_sid: CallSid,
) -> dict[str, Any]:

    def read() -> dict[str, Any] | None:
        call = tenant.call(user.business_id, call_sid)
        if call is None:
            return None
        info = store.for_call(call_sid) if store else None
        call["recording"] = None
        if info is not None and info.business_id == user.business_id:
            call["recording"] = {
                "url": request.url_for("get_recording", call_sid=call_sid).path,
                "duration_s": info.duration_s,
                "bytes": info.bytes,
            }
        audit.record(user.business_id, actor(user), "read_transcript", call_sid, user_id=user.id)
        return call

    call = await asyncio.to_thread(read)
    if call is None:
        raise HTTPException(404, "no such call")
    return call


@router.get(
    "/calls/{call_sid}/recording",
    summary="The call's recording as a WAV (audited)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
            "description": "16-bit PCM, 8 kHz stereo: caller left, agent right",
        },
        **missing("call, or it has no recording"),
    },
)
async def get_recording(
    user: Reader, tenant: Queries, store: Recordings, audit: Audit, call_sid: CallSid
) -> StreamingResponse:

    def open_wav() -> tuple[bytes, Iterator[bytes]] | None:
        if store is None or not tenant.owns_call(user.business_id, call_sid):
            return None
        info = store.for_call(call_sid)
        if info is None or info.business_id != user.business_id or not info.path.exists():
            return None
        chunks = store.wav(info)
        header = next(chunks)  # a first pass over the file checks every record's tag
        audit.record(
            user.business_id,
            actor(user),
            "read_recording",
            call_sid,
            {"recording_id": info.id},
            user_id=user.id,
        )
        return header, chunks

    try:
        opened = await asyncio.to_thread(open_wav)
    except FileNotFoundError:  # purged by retention between the lookup and the read
        opened = None
    except RecordingError as exc:
        log.error("recording of %s cannot be read: %s", call_sid, exc)
        raise HTTPException(500, "the recording cannot be decrypted") from None
    if opened is None:
        raise HTTPException(404, "no recording for this call")
    header, chunks = opened
    (pcm_bytes,) = struct.unpack("<I", header[40:44])

    def body() -> Iterator[bytes]:  # sync: Starlette iterates it in the thread pool
        yield header
        yield from chunks

    return StreamingResponse(
        body(),
        media_type="audio/wav",
        headers={
            "Content-Length": str(len(header) + pcm_bytes),
            "Content-Disposition": f'attachment; filename="{call_sid}.wav"',
            "Cache-Control": "no-store",
        },
    )
