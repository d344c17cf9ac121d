"""Finished calls the database could not take, kept on disk until it can.

One JSON file per call, written atomically (temp file + rename) under the data directory.
Replayed at start-up and then periodically; a file is removed only once stored."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from storage.calls import CallStore, FinishedCall, SegmentRecord, TurnRecord

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, call: FinishedCall) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps(asdict(call), default=lambda v: v.isoformat())
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        path = self.directory / f"{call.call_sid}-{os.path.basename(tmp)[:-4]}.json"
        os.replace(tmp, path)
        log.warning("call %s kept in the journal until the database is back", call.call_sid)
        return path

    def pending(self) -> list[Path]:
        return sorted(self.directory.glob("*.json")) if self.directory.exists() else []

    def replay(self, store: CallStore) -> int:
        """Store what the journal holds; returns how many calls were stored."""
        stored = 0
        for path in self.pending():
            try:
                call = _load(path)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("journal file %s is unreadable (%s); moved aside", path.name, exc)
                path.rename(path.with_suffix(".bad"))
                continue
            try:
                store.finalize(call)
            except LookupError:
                log.error("journal file %s names an unknown call; moved aside", path.name)
                path.rename(path.with_suffix(".bad"))
                continue
            except Exception as exc:  # still down: try again later
                log.info("journal replay waits for the database: %s", type(exc).__name__)
                return stored
            path.unlink()
            stored += 1
        return stored


def _load(path: Path) -> FinishedCall:
    raw = json.loads(path.read_text())
    for key in ("ended_at", "stream_started_at"):
        if raw.get(key):
            raw[key] = datetime.fromisoformat(raw[key])
    raw["segments"] = [SegmentRecord(**s) for s in raw.get("segments", [])]
    raw["turns"] = [TurnRecord(**t) for t in raw.get("turns", [])]
    return FinishedCall(**raw)
