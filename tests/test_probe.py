"""A health check that never comes back (a database ping on a partitioned network): the
caller of /healthz gets an answer in bounded time, stuck checks do not pile up threads,
and the process can still exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from voice_agent.ops.probe import Probe, StillWaiting


async def test_a_stuck_check_times_out_and_the_next_fails_at_once_until_it_returns() -> None:
    release = threading.Event()
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        release.wait(60)

    probe = Probe(check, "database")
    with pytest.raises(TimeoutError):
        await probe.run(0.2)
    with pytest.raises(StillWaiting, match="database"):
        await probe.run(0.2)
    stuck = [t for t in threading.enumerate() if t.name == "probe-database"]
    assert len(stuck) == 1 and len(calls) == 1, "no second thread"
    assert stuck and all(t.daemon for t in stuck), "a stuck check never holds the exit"
    release.set()
    stuck[0].join(10)
    await probe.run(5)  # answered: the next check runs
    assert len(calls) == 2


async def test_a_failing_check_raises_its_own_error() -> None:
    def check() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(ConnectionRefusedError, match="refused"):
        await Probe(check, "database").run(5)


def test_a_process_exits_while_a_check_is_stuck() -> None:
    code = textwrap.dedent(
        """
        import asyncio, threading
        from voice_agent.ops.probe import Probe
        async def main():
            try:
                await Probe(threading.Event().wait, "database").run(0.1)
            except TimeoutError:
                print("timed out")
        asyncio.run(main())
        """
    )
    # Without a daemon thread the interpreter would wait for the check for ever; the
    # subprocess timeout only keeps a regression from hanging the suite.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "timed out" in out.stdout, out.stderr


def test_a_check_that_returns_after_its_loop_closed_is_dropped_quietly() -> None:
    """The server stopped while a check was stuck: when the check comes back there is no
    loop to tell, and the thread ends without an error."""
    import asyncio

    release = threading.Event()
    errors: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment]
    try:
        probe = Probe(lambda: release.wait(30), "database")

        async def stuck() -> None:
            with pytest.raises(TimeoutError):
                await probe.run(0.1)

        asyncio.run(stuck())  # the loop is closed when this returns
        [thread] = [t for t in threading.enumerate() if t.name == "probe-database"]
        release.set()
        thread.join(10)
        assert not thread.is_alive() and errors == []
    finally:
        threading.excepthook = old_hook
