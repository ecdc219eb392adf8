"""The retention policy on a schedule: ``inspector serve`` prunes old views every ``retention.schedule_hours``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from fastapi import FastAPI

from inspector.config import Settings
from inspector.store import Store
from inspector.store.retention import PruneReport, RetentionPolicy, prune

log = logging.getLogger("inspector.api")


def retention_factory(
    settings: Settings, store: Store, on_report: Callable[[PruneReport], object] | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A background task for ``app.state.background``: prune at start, then every ``schedule_hours``.

    Nothing runs when no disposition has a finite retention or no schedule is set
    (``inspector prune`` still works by hand). A failed prune is logged and tried
    again next period: it must never stop the station.
    """
    cfg = settings.retention
    policy = RetentionPolicy(cfg)  # an unknown disposition in the settings stops the start, not a later run

    @asynccontextmanager
    async def pruning(app: FastAPI) -> AsyncIterator[None]:
        if cfg.schedule_hours is None or not policy.active:
            yield
            return

        async def loop() -> None:
            assert cfg.schedule_hours is not None
            while True:
                try:
                    report = await anyio.to_thread.run_sync(lambda: prune(store.db, store.images, cfg))
                    log.info("retention: %s", report.summary())
                    if on_report is not None:
                        on_report(report)
                except Exception as exc:
                    log.warning("retention: the prune failed, retried in %g h: %s", cfg.schedule_hours, exc)
                await asyncio.sleep(cfg.schedule_hours * 3600)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()

    return pruning
