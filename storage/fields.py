"""Caller-supplied strings, made to fit their columns the same way on every database.

PostgreSQL refuses a value longer than its VARCHAR; SQLite stores it. So nothing that comes
from outside reaches the driver unchecked:

- numbers (caller ids, callback numbers, SMS recipients) go through `caller_id`: up to 255
  characters they are kept as given (a SIP id such as `sip:line-7@pbx.example.com:5060`
  fits); a longer one is replaced by its first 180 characters and its SHA-256, so it is
  still one distinct, stable value: the call is answered, and an export or deletion by the
  same long number finds it (storage.privacy.caller_phone applies the same function);
- free text heard from the caller (a name, a best time) is clipped with `clip`;
- anything else too long for its column raises `FieldTooLong` before the INSERT (see the
  guard in storage.models), on SQLite as on PostgreSQL."""

from __future__ import annotations

import hashlib

MAX_CALLER_ID = 255
_KEEP = 180


def caller_id(value: str) -> str:
    """A number as stored: stripped, and at most MAX_CALLER_ID characters (see above)."""
    value = value.strip()
    if len(value) <= MAX_CALLER_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:_KEEP]}~sha256:{digest}"


def clip(value: str | None, limit: int) -> str | None:
    """Free text cut to its column's length (None stays None)."""
    if value is None or len(value) <= limit:
        return value
    return value[:limit]
