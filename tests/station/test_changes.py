"""The long poll's version: moved from threads, waited for on the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

from station.changes import Changes


def test_a_poll_returns_at_once_when_behind_and_is_woken_by_a_bump_from_a_thread() -> None:
    changes = Changes()

    async def scenario() -> tuple[float, float]:
        changes.loop = asyncio.get_running_loop()
        changes.bump()  # bumped with nobody waiting
        t0 = time.monotonic()
        await changes.wait(0, 5)  # the page saw version 0: already behind
        behind = time.monotonic() - t0
        timer = threading.Timer(0.05, changes.bump)
        timer.start()
        t1 = time.monotonic()
        await changes.wait(changes.version, 5)
        timer.join()
        return behind, time.monotonic() - t1

    behind, woken = asyncio.run(scenario())
    assert behind < 0.1 and 0.04 < woken < 1.0 and changes.version == 2


def test_release_wakes_the_polls_without_a_change_and_a_closed_loop_is_ignored() -> None:
    changes = Changes()

    async def scenario() -> float:
        changes.loop = asyncio.get_running_loop()
        asyncio.get_running_loop().call_later(0.05, changes.release)
        t0 = time.monotonic()
        await changes.wait(changes.version, 5)
        return time.monotonic() - t0

    assert asyncio.run(scenario()) < 1.0 and changes.version == 0
    changes.bump()  # the loop is closed now: nothing to wake, no error
    assert changes.version == 1
