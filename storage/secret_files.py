"""Secrets generated into the data dir (the development Twilio token, the recording key),
made once even when several workers start together on one data dir."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The file's text, or `make()` written to it (0600) when it does not exist yet.
    Returns (text, whether this call created it). The new file is written whole under a
    temporary name, then linked into place: link fails if another process got there first,
    so every worker reads the one value that won and nobody sees a half-written file."""
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip(), False
        return value, True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
