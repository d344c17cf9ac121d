"""A blocking check run off the event loop on a daemon thread of its own, at most one at a
time. A database ping on a partitioned network can block for ever; on a pool thread it
would hold one of the threads calls need, and keep the process from exiting (interpreter
exit and asyncio.run both wait for pool threads). A probe still stuck makes the next
one fail at once instead of stacking up threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any


class StillWaiting(Exception):
    """The previous probe has not come back yet."""


class Probe:
    def __init__(self, check: Callable[[], Any], name: str) -> None:
        self._check, self._name = check, name
        self._busy = threading.Event()

    async def run(self, timeout_s: float) -> None:
        if self._busy.is_set():
            raise StillWaiting(f"{self._name}: the last check has not answered yet")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(exc: BaseException | None) -> None:
            if done.done():
                return
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)

        def work() -> None:
            try:
                self._check()
                error = None
            except BaseException as exc:  # handed to the waiting coroutine
                error = exc
            finally:
                self._busy.clear()
            # A check that came back after its server stopped has nobody left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, error)

        self._busy.set()
        threading.Thread(target=work, name=f"probe-{self._name}", daemon=True).start()
        await asyncio.wait_for(asyncio.shield(done), timeout_s)
