"""Keys the caller presses, made into entries: a call-back number, a ZIP code, a menu
choice. An entry ends with '#' or a pause (people key a number in one go, and rarely press
'#'); '*' starts it over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_KEYS = 16  # an entry longer than any phone number ends there


class KeypadEntry:
    def __init__(self, gap_s: float, on_entry: Callable[[str], None]) -> None:
        self._gap_s, self._on_entry = gap_s, on_entry
        self._keys = ""
        self._timer: asyncio.TimerHandle | None = None

    def press(self, key: str) -> None:
        self._cancel_timer()
        if key == "*":
            self._keys = ""
        elif key != "#":
            self._keys += key.upper()
        if key == "#" or len(self._keys) >= MAX_KEYS:
            self._done()
        elif self._keys:
            self._timer = asyncio.get_running_loop().call_later(self._gap_s, self._done)

    def close(self) -> str:
        """No more keys (the call ended): what was keyed but not finished."""
        self._cancel_timer()
        keys, self._keys = self._keys, ""
        return keys

    def _done(self) -> None:
        self._timer = None
        keys, self._keys = self._keys, ""
        if keys:
            self._on_entry(keys)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
