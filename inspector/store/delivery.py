"""The webhook worker: leases due deliveries from the outbox, signs, sends, retries.

It keeps no state of its own: everything is in the database, so a restart (or a
crash mid-delivery, once the lease runs out) picks up where it left off, and
the workers of several processes on one database share the outbox through
their leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import httpx

from inspector.config import WebhookConfig
from inspector.store.db import Database
from inspector.store.webhooks import Job, any_due, lease_due, record_attempt, release_leases, signed_headers

log = logging.getLogger("inspector.webhooks")

T = TypeVar("T")


def backoff(attempts: int, cfg: WebhookConfig, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with equal jitter: half the delay fixed, half random."""
    delay = min(cfg.max_delay_s, cfg.base_delay_s * (2 ** max(0, attempts - 1)))
    r = (rng or random).random()
    return timedelta(seconds=delay / 2 + r * delay / 2)


class WebhookWorker:
    """One background task per app; ``notify()`` wakes it when a new event is committed."""

    def __init__(
        self,
        db: Database,
        cfg: WebhookConfig,
        *,
        on_result: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self._on_result = on_result
        self._transport = transport
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[int] = set()
        self._threads: set[asyncio.Future[Any]] = set()
        # Names this worker as a lease holder among every process sharing the database.
        self.worker_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"

    def notify(self) -> None:
        self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookWorker]:
        self._wake = asyncio.Event()  # bound to this loop (an app may be started again on another)
        self._task = asyncio.create_task(self._run(), name="webhook-worker")
        try:
            yield self
        finally:
            self._task.cancel()
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            finally:  # even if the task ended in an error: the leases it holds are handed back
                self._task = None
                # A cancelled await does not stop its thread: a lease taken there after this
                # point would be missed and held for ``lease_s``, so wait for those threads.
                if self._threads:
                    await asyncio.gather(*list(self._threads), return_exceptions=True)
                if self._in_flight:  # stopped mid-delivery: hand the leases back so the next start retries at once
                    ids = sorted(self._in_flight)
                    self._in_flight.clear()
                    try:
                        await anyio.to_thread.run_sync(self._release, ids)
                    except Exception:
                        log.exception("webhook worker could not release its leases; they expire by themselves")

    async def _off_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread that a stop waits for (cancelling only abandons the wait)."""
        fut: asyncio.Future[T] = asyncio.ensure_future(anyio.to_thread.run_sync(fn))
        self._threads.add(fut)
        fut.add_done_callback(self._threads.discard)
        return await asyncio.shield(fut)

    def _release(self, ids: list[int]) -> None:
        with self.db.write() as s:
            release_leases(s, ids, self.worker_id)

    async def _run(self) -> None:
        async with httpx.AsyncClient(
            timeout=self.cfg.timeout_s, transport=self._transport, follow_redirects=False, trust_env=False
        ) as client:
            while True:
                try:
                    jobs = await self._off_loop(self._lease)
                except Exception:  # database busy or gone: try again on the next tick
                    log.exception("webhook worker could not lease deliveries")
                    jobs = []
                if jobs:
                    await asyncio.gather(*(self._deliver(client, j) for j in jobs))
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.cfg.poll_interval_s)

    def _lease(self) -> list[Job]:
        with self.db.read() as s:
            if not any_due(s):
                return []
        with self.db.write() as s:
            jobs = lease_due(
                s, limit=self.cfg.batch_size, lease=timedelta(seconds=self.cfg.lease_s), worker=self.worker_id
            )
        # Held from here: a stop while this thread runs still finds them (and hands them back).
        self._in_flight.update(j.delivery_id for j in jobs)
        return jobs

    async def _deliver(self, client: httpx.AsyncClient, job: Job) -> None:
        # In flight since ``_lease``; out only once the attempt is recorded (which ends the lease):
        # cancelled mid-request, the id stays and ``running`` hands its lease back.
        await self._attempt(client, job)
        self._in_flight.discard(job.delivery_id)

    async def _attempt(self, client: httpx.AsyncClient, job: Job) -> None:
        ts = int(time.time())
        headers = signed_headers(job.secret, job.event_id, ts, job.body)
        status: int | None = None
        error: str | None = None
        try:
            resp = await client.post(job.url, content=job.body, headers=headers)
            status = resp.status_code
            ok = 200 <= status < 300
            if not ok:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            ok = False
            error = f"{type(exc).__name__}: {exc}"
        delay = backoff(job.attempts + 1, self.cfg)

        def _record() -> str:
            with self.db.write() as s:
                return record_attempt(
                    s,
                    job.delivery_id,
                    ok=ok,
                    status=status,
                    error=error,
                    next_delay=delay,
                    max_attempts=self.cfg.max_attempts,
                    worker=self.worker_id,
                )

        try:
            outcome = await self._off_loop(_record)
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("webhook worker could not record a delivery attempt")
            return
        if outcome != "delivered":
            log.warning("webhook %s to %s: %s (attempt %d)", job.event_id, job.url, error, job.attempts + 1)
        if self._on_result is not None:
            self._on_result("delivered" if ok else ("dead" if outcome == "dead" else "failed"))
