"""The label printer's background worker: prints queued labels, retries a printer that is down.

A decision only writes a job (in its own transaction) and wakes this worker:
the printer is never on the decision's path. Jobs are printed one at a time, in
order (a printer takes one label after another). A failed attempt is tried
again after ``labels.retry_s``, doubling up to eight times that, until the job
prints or is older than ``labels.give_up_h``. Everything is in the database, so
a restart carries on where the last run stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import anyio

from inspector.config import LabelsConfig
from inspector.labels import Format, Size, render_label
from inspector.labels.jobs import LeasedJob, any_due, lease_due, record_attempt
from inspector.labels.printers import Printer, PrintError, parse_printer, send
from inspector.store.db import Database
from inspector.store.inspections import get_inspection
from inspector.types import utcnow

log = logging.getLogger("inspector.labels")

MAX_BACKOFF = 8  # the longest wait between two attempts, in labels.retry_s


def checked_printer(cfg: LabelsConfig) -> Printer | None:
    """The configured printer, or None; a :class:`ValueError` for a setting that cannot work."""
    if cfg.printer is None:
        return None
    printer = parse_printer(cfg.printer)
    if cfg.format == "pdf" and not printer.takes_pdf:
        raise ValueError(f"labels.printer {cfg.printer!r} takes raw ZPL only; set labels.format to zpl")
    return printer


def retry_in(attempts: int, cfg: LabelsConfig) -> timedelta:
    """``retry_s`` after the first failure, doubling, at most ``MAX_BACKOFF`` times it."""
    return timedelta(seconds=cfg.retry_s * min(MAX_BACKOFF, 2 ** max(0, attempts - 1)))


class LabelWorker:
    """One per process with a printer; ``notify()`` wakes it when a job is committed."""

    def __init__(
        self,
        db: Database,
        cfg: LabelsConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        printer = checked_printer(cfg)
        if printer is None or cfg.printer is None:
            raise ValueError("the label worker needs labels.printer")
        self.db = db
        self.cfg = cfg
        self.spec: str = cfg.printer
        self.printer = printer
        self._clock = clock
        self._wake = asyncio.Event()
        self._down_since: float | None = None

    def notify(self) -> None:
        self._wake.set()

    def factory(self, _app: object) -> contextlib.AbstractAsyncContextManager[None]:
        """For the app's background list: runs while the app does."""
        return self.running()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._wake = asyncio.Event()  # bound to this loop
        task = asyncio.create_task(self._run(), name="label-worker")
        try:
            yield
        finally:
            task.cancel()  # an attempt in its thread runs out (labels.timeout_s) and is recorded first
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        poll = min(self.cfg.retry_s, 2.0)
        while True:
            self._wake.clear()
            jobs: list[LeasedJob] = []
            try:
                jobs = await anyio.to_thread.run_sync(self._lease)
            except Exception as exc:  # the database is busy or gone: the next tick tries again
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("label worker cannot reach the database (%s: %s); retrying", type(exc).__name__, exc)
            else:
                self._down_since = None
            printed = False
            for job in jobs:
                try:
                    printed = await anyio.to_thread.run_sync(self._attempt, job)
                except Exception:  # the job's lease runs out and it is tried again; the worker goes on
                    log.exception("label worker failed on job %s", job.id)
            if printed:  # the printer works: the next label at once
                continue
            # nothing due, or the printer is down (the other labels would fail the same way): wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()

    def _lease(self) -> list[LeasedJob]:
        now = self._clock()
        with self.db.read() as s:
            if not any_due(s, printer=self.spec, now=now):
                return []
        hold = timedelta(seconds=2 * self.cfg.timeout_s + 30)
        with self.db.write() as s:
            return lease_due(s, printer=self.spec, now=now, hold=hold, limit=1)

    def _attempt(self, job: LeasedJob) -> bool:
        """Render and send one label, record how it went (failures are retried); whether it printed."""
        error: str | None = None
        final = False
        try:
            with self.db.read() as s:
                inspection = get_inspection(s, job.inspection_id)
            if inspection is None:
                raise LookupError(f"inspection {job.inspection_id} is gone")
            fmt: Format = "zpl" if job.format == "zpl" else "pdf"
            size: Size = "2x1" if job.size == "2x1" else "4x6"
            data = render_label(inspection, fmt, size, decision_id=job.decision_id)
        except (LookupError, ValueError, KeyError) as exc:  # a label that cannot be made: retrying will not help
            error, final = f"the label cannot be made: {exc}", True
        else:
            name = f"{job.created_at:%Y%m%dT%H%M%S}-{job.inspection_id}-{job.id[:8]}.{job.format}"
            try:
                send(self.printer, data, name=name, raw=fmt == "zpl", timeout_s=self.cfg.timeout_s)
            except PrintError as exc:
                error = str(exc)
        now = self._clock()
        try:
            with self.db.write() as s:
                record_attempt(
                    s,
                    job,
                    error=error,
                    now=now,
                    retry_in=retry_in(job.attempts + 1, self.cfg),
                    give_up_after=timedelta(hours=self.cfg.give_up_h),
                    final=final,
                )
        except Exception:  # the lease runs out and the job is tried again
            log.exception("label worker could not record an attempt on job %s", job.id)
            return False
        if error is not None:
            attempt = job.attempts + 1
            log.warning("label %s for inspection %s: %s (attempt %d)", job.id, job.inspection_id, error, attempt)
        return error is None
