"""The dashboard API under /api: a business's calls, transcripts, recordings, bookings,
messages, handoffs, users and audit log.

Every request carries a user's bearer token (`voice_agent.api.deps`) and sees its own business
only: a call, booking or message of another business is a 404, exactly as one that does not
exist. Every transcript or recording read is written to the audit log before the data is
returned. Database work runs in threads (asyncio.to_thread); a recording is decrypted in
the thread pool as it is streamed.

The routes live in `api_calls`, `api_records` and `api_admin`; this module gathers them into
the one router the app includes: `app.include_router(api.router)`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from voice_agent.api import admin as api_admin
from voice_agent.api import calls as api_calls
from voice_agent.api import records as api_records
from voice_agent.api.deps import no_store
from voice_agent.api.params import UNAUTHORIZED

router = APIRouter(prefix="/api", dependencies=[Depends(no_store)], responses=UNAUTHORIZED)
router.include_router(api_admin.router)
router.include_router(api_calls.router)
router.include_router(api_records.router)
