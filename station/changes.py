"""The page's long poll: a version that moves on every change the page cares about.

The station's threads bump it; the polls waiting for it live on the API's event
loop, so waking them is handed to that loop rather than done from the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Changes:
    """``version`` and the long polls waiting for it to move."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.version = 0
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()

    def bump(self) -> None:
        """Something changed: move the version and wake the polls; safe from any thread."""
        with self._lock:
            self.version += 1
        self.release()

    def release(self) -> None:
        """Wake every waiting poll now (after a change, or because the server is stopping)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, after: int, timeout: float) -> None:
        """Return once ``version`` moved past ``after``, or after ``timeout`` seconds."""
        if self.version != after:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)
