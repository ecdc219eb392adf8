"""The drift summary as the server keeps it: recomputed from the store now and then, exported to /metrics."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio
from fastapi import FastAPI
from prometheus_client import Gauge

from inspector.api.metrics import Metrics
from inspector.config import Settings
from inspector.feedback import drift
from inspector.feedback.source import load_inspections
from inspector.store import Store
from inspector.types import utcnow

log = logging.getLogger("inspector.api")


class DriftMonitor:
    """Computes the drift report of the newest day against its baseline; gauges on the app's metrics."""

    def __init__(self, settings: Settings, store: Store, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.report: dict[str, Any] = {"day": None, "summary": None, "baseline_days": [], "warnings": []}
        self._lock = threading.Lock()
        self._at: float | None = None
        r = metrics.registry
        self.warning_gauge = Gauge(
            "inspector_drift_warning",
            "1 when a daily figure moved beyond its threshold (drift), by metric and key",
            ["metric", "key"],
            registry=r,
        )
        self.warnings_total = Gauge("inspector_drift_warnings", "Drift warnings in force", registry=r)
        self.override_rate = Gauge(
            "inspector_override_rate", "Override rate of the watched day, by recommended grade", ["grade"], registry=r
        )
        self.mean_confidence = Gauge(
            "inspector_mean_confidence",
            "Mean detection confidence of the watched day, by class",
            ["class_name"],
            registry=r,
        )

    def current(self, max_age_s: float) -> dict[str, Any]:
        """The last report when it is younger than ``max_age_s``, else a fresh one (pages poll this)."""
        with self._lock:
            report, at = self.report, self._at
        if at is not None and time.monotonic() - at < max_age_s:
            return report
        return self.refresh()

    def refresh(self, now: datetime | None = None) -> dict[str, Any]:
        """Read the window (baseline days + the watched day) and recompute; blocking, call it off the loop."""
        cfg = self.settings.feedback.drift
        now = now or utcnow()
        since = (now - timedelta(days=cfg.baseline_days + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        with self.store.db.read() as s:
            inspections = load_inspections(s, since=since)
        report = drift.report(drift.daily(inspections), cfg)
        report["computed_at"] = now.isoformat()
        with self._lock:
            self.warning_gauge.clear()
            for w in report["warnings"]:
                self.warning_gauge.labels(w["metric"], w["key"]).set(1)
            self.warnings_total.set(len(report["warnings"]))
            self.override_rate.clear()
            self.mean_confidence.clear()
            summary = report.get("summary") or {}
            for k, v in (summary.get("override_rate") or {}).items():
                self.override_rate.labels(k).set(v)
            for k, v in (summary.get("mean_confidence") or {}).items():
                self.mean_confidence.labels(k).set(v)
            self.report = report
            self._at = time.monotonic()
        return report


def drift_factory(monitor: DriftMonitor) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A background task for ``app.state.background``: refresh now, then every ``feedback.drift.refresh_s``."""

    @asynccontextmanager
    async def refreshing(app: FastAPI) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    await anyio.to_thread.run_sync(monitor.refresh)
                except Exception as exc:  # the summary is advisory: never stop the server over it
                    log.warning("drift summary: %s", exc)
                await asyncio.sleep(monitor.settings.feedback.drift.refresh_s)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()

    return refreshing
