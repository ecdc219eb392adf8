"""The webhook worker: leases due deliveries from the outbox, signs, sends, retries.

It keeps no state of its own: everything is in the database, so a restart (or a
crash mid-delivery, once the lease runs out) picks up where it left off, and
the workers of several processes on one database share the outbox through
their leases.

A receiver cannot hold the worker: each attempt runs as its own task under a
total deadline (``webhooks.timeout_s``, however slowly the answer trickles),
at most one attempt per endpoint is in flight, and a stop cancels them all.
Redirects are not followed (a 3xx is a failure naming its Location); 410 Gone
disables the endpoint at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
import httpcore
import httpx

from inspector.config import WebhookConfig
from inspector.store.db import Database
from inspector.store.webhooks import (
    Job,
    Resolve,
    any_due,
    lease_due,
    record_attempt,
    refused_address,
    release_leases,
    resolve_host,
    shown_url,
    signed_headers,
)
from inspector.types import utcnow

log = logging.getLogger("inspector.webhooks")

T = TypeVar("T")


def backoff(attempts: int, cfg: WebhookConfig, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter, from ``base_delay_s`` up to the doubled ceiling (capped).

    Full jitter spreads the retries of many deliveries that failed together (a
    receiver back from an outage) over the whole window instead of its top half.
    """
    ceiling = min(cfg.max_delay_s, cfg.base_delay_s * (2 ** max(0, attempts - 1)))
    floor = min(cfg.base_delay_s, ceiling)
    return timedelta(seconds=(rng or random).uniform(floor, ceiling))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses outside the station's own networks, checked after resolving.

    The address checked is the address connected to, so a name that resolves
    elsewhere between registration and delivery (or between two lookups) is
    caught; TLS still verifies the certificate against the URL's host name.
    """

    def __init__(self, resolve: Resolve) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await anyio.to_thread.run_sync(self._resolve, host, port, abandon_on_cancel=True)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        for address in addresses:
            kind = refused_address(address)
            if kind is not None:
                raise httpcore.ConnectError(
                    f"refused: {host} resolves to a {kind} address ({address}); "
                    "webhooks.allow_private_urls allows receivers on the station's own networks"
                )
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a webhook receiver is never a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over :class:`_GuardedBackend` (httpx takes no network backend argument)."""

    def __init__(self, resolve: Resolve) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_GuardedBackend(resolve)
        )


def _refusal(status: int, location: str | None) -> tuple[str, bool]:
    """The last error of an answer that is not 2xx, and whether it unsubscribes the endpoint."""
    if 300 <= status < 400:
        return f"HTTP {status}: redirect to {location or '(no Location)'} not followed; register the final URL", False
    if status == 410:
        return "HTTP 410 Gone: the receiver unsubscribed; the endpoint is disabled", True
    return f"HTTP {status}", False


class WebhookWorker:
    """One background task per app; ``notify()`` wakes it when a new event is committed."""

    def __init__(
        self,
        db: Database,
        cfg: WebhookConfig,
        *,
        on_result: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolve: Resolve = resolve_host,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self._on_result = on_result
        self._transport = transport
        self._resolve = resolve
        self._clock = clock
        self._rng = rng
        self._wake = asyncio.Event()
        self._down_since: float | None = None  # the database has been out of reach since (monotonic)
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[int] = set()
        self._threads: set[asyncio.Future[Any]] = set()
        self._attempts: dict[asyncio.Task[None], str] = {}  # attempt in flight -> its endpoint
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
            timeout=self.cfg.timeout_s,
            transport=self._connections(),
            follow_redirects=False,
            trust_env=False,
        ) as client:
            try:
                while True:
                    self._wake.clear()  # before leasing: an attempt that ends meanwhile wakes the wait below
                    jobs: list[Job] = []
                    free = self.cfg.batch_size - len(self._attempts)
                    busy = tuple(set(self._attempts.values()))
                    if free > 0:
                        try:
                            jobs = await self._off_loop(functools.partial(self._lease, free, busy))
                        except Exception as exc:  # database busy or gone: try again on the next tick
                            self._lease_failed(exc)
                        else:
                            self._lease_worked()
                    for job in jobs:
                        task = asyncio.create_task(self._deliver(client, job), name=f"webhook-{job.delivery_id}")
                        self._attempts[task] = job.endpoint_id
                        task.add_done_callback(self._attempt_done)
                    if jobs:
                        continue
                    # not asyncio.wait_for: on 3.11 it loses a stop that arrives as an attempt wakes it
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.cfg.poll_interval_s):
                            await self._wake.wait()
            finally:  # a stop cancels the attempts in flight; ``running`` hands their leases back
                for task in self._attempts:
                    task.cancel()
                await asyncio.gather(*self._attempts, return_exceptions=True)

    def _connections(self) -> httpx.AsyncBaseTransport | None:
        """A new transport per run (the client closes it when the worker stops): guarded unless allowed."""
        if self._transport is not None or self.cfg.allow_private_urls:
            return self._transport
        return _GuardedTransport(self._resolve)

    def _lease_failed(self, exc: Exception) -> None:
        """Log an outage once, with its cause, not a traceback on every tick while it lasts."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("webhook worker cannot reach the database (%s: %s); retrying", type(exc).__name__, exc)
        else:
            log.debug("webhook worker still cannot lease deliveries", exc_info=True)

    def _lease_worked(self) -> None:
        if self._down_since is not None:
            log.warning("webhook worker reaches the database again after %.0f s", time.monotonic() - self._down_since)
            self._down_since = None

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.pop(task, None)
        self._wake.set()  # a slot and an endpoint are free again

    def _lease(self, limit: int, busy: tuple[str, ...]) -> list[Job]:
        now = self._clock()
        with self.db.read() as s:
            if not any_due(s, now=now):
                return []
        with self.db.write() as s:
            jobs = lease_due(
                s,
                limit=limit,
                lease=timedelta(seconds=self.cfg.lease_s),
                worker=self.worker_id,
                now=now,
                busy=busy,
                one_per_endpoint=True,
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
        gone = False
        try:
            # httpx bounds connect and each read; this bounds the whole attempt (a trickled answer too)
            async with asyncio.timeout(self.cfg.timeout_s):
                async with client.stream("POST", job.url, content=job.body, headers=headers) as resp:
                    status = resp.status_code  # the answer's body is never read
                    location = resp.headers.get("location")
        except TimeoutError:
            error = f"no complete answer within {self.cfg.timeout_s:g} s (webhooks.timeout_s)"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error, gone = _refusal(status, location)
        delay = backoff(job.attempts + 1, self.cfg, self._rng)

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
                    now=self._clock(),
                    gone=gone,
                    disable_after=timedelta(days=self.cfg.disable_after_days),
                )

        try:
            outcome = await self._off_loop(_record)
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("webhook worker could not record a delivery attempt")
            return
        if outcome != "delivered":
            log.warning("webhook %s to %s: %s (attempt %d)", job.event_id, shown_url(job.url), error, job.attempts + 1)
        if self._on_result is not None:
            self._on_result("delivered" if ok else ("dead" if outcome == "dead" else "failed"))
