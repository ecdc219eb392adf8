"""A bound on the pixels decoded and waiting for the pipeline, across concurrent inspections.

Each request is already limited (``server.max_request_pixels``), but six of the
largest ones at once held 3 GB of decoded frames. A request takes its share
from its image headers before decoding and gives it back when its inspection is
stored, so the frames in memory at once never add up to more than the budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from inspector.errors import Busy


class PixelBudget:
    """Pixels decoded and not yet through the pipeline, across requests, at most ``capacity``."""

    def __init__(self, capacity: int, wait_s: float = 60.0) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self.in_use = 0
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # made on first use, in the server's event loop
            self._cond = asyncio.Condition()
        return self._cond

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Wait for ``pixels`` of the budget (:class:`Busy` past ``wait_s``), give it back after."""
        share = max(0, min(pixels, self.capacity))
        cond = self._condition()
        async with cond:
            try:
                await asyncio.wait_for(cond.wait_for(lambda: self.in_use + share <= self.capacity), self.wait_s)
            except TimeoutError as exc:
                raise Busy("too many large images are being inspected at once; retry", retry_after=5) from exc
            self.in_use += share
        try:
            yield
        finally:
            async with cond:
                self.in_use -= share
                cond.notify_all()
