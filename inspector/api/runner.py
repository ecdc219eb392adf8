"""Inference off the event loop, behind a bounded queue.

The model runs on its own thread pool (one worker per loaded model, so a model
never runs twice at once); at most ``capacity`` inspections may wait for it.
Past that the caller is told to come back later instead of piling up memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from inspector.errors import Busy

T = TypeVar("T")


class QueueFull(Busy, code="queue_full"):
    """Every slot is taken; ``retry_after`` is an estimate in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the inference queue is full; retry in {retry_after} s", retry_after=retry_after)


class InferenceRunner:
    """Runs blocking model calls on dedicated threads with admission control."""

    def __init__(self, *, workers: int = 1, queue: int = 8, on_depth: Callable[[int], None] | None = None) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self._executor: ThreadPoolExecutor | None = None
        self._depth = 0
        self._ewma_s = 1.0
        self._on_depth = on_depth

    @property
    def depth(self) -> int:
        """Inspections running or waiting."""
        return self._depth

    def retry_after(self) -> int:
        return max(1, math.ceil(self._ewma_s * self._depth / self.workers))

    def _set_depth(self, n: int) -> None:
        self._depth = n
        if self._on_depth is not None:
            self._on_depth(n)

    async def run(self, fn: Callable[[], T]) -> tuple[T, float, float]:
        """Run ``fn`` on a model thread; returns its result, the wait and the run time in seconds.

        Must be called from the event loop thread (the counter is not locked).
        """
        if self._depth >= self.capacity:
            raise QueueFull(self.retry_after())
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="inference")
        loop = asyncio.get_running_loop()
        queued = time.perf_counter()
        started: list[float] = []

        def job() -> T:
            started.append(time.perf_counter())
            return fn()

        self._set_depth(self._depth + 1)
        future = self._executor.submit(job)

        # The slot is freed when the job really ends, even if the awaiting request is cancelled.
        def release(_f: object) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the app is shutting down
                loop.call_soon_threadsafe(lambda: self._set_depth(self._depth - 1))

        future.add_done_callback(release)
        result = await asyncio.wrap_future(future)
        done = time.perf_counter()
        run_s = done - (started[0] if started else queued)
        self._ewma_s = 0.8 * self._ewma_s + 0.2 * run_s
        return result, (started[0] - queued if started else 0.0), run_s

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
