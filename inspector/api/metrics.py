"""Prometheus metrics on a per-app registry (several apps may live in one process).

Every series carries a ``station`` label: the benches of a fleet are scraped
one by one, and their series add up by station without relabelling rules.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Methods labelled by name; any other (a client may send "X1", "X2", ...) is counted as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class StationLabelled:
    """A labelled metric whose first label, ``station``, is already filled in."""

    def __init__(self, metric: MetricWrapperBase, station: str) -> None:
        self._metric = metric
        self._station = station

    def labels(self, *values: str) -> Any:
        return self._metric.labels(self._station, *values)


class Metrics:
    """Every series the station exports, labelled with its station id."""

    def __init__(self, station: str = "bench-1") -> None:
        self.station = station
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        st = ["station"]
        self.requests = StationLabelled(
            Counter("inspector_http_requests", "HTTP requests served", [*st, "method", "route", "status"], registry=r),
            station,
        )
        self.latency = StationLabelled(
            Histogram(
                "inspector_http_request_duration_seconds",
                "HTTP request latency",
                [*st, "method", "route"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            station,
        )
        self.inspections = StationLabelled(
            Counter(
                "inspector_inspections",
                "Inspections stored, by grade and disposition",
                [*st, "grade", "disposition", "source"],
                registry=r,
            ),
            station,
        )
        self.decisions = StationLabelled(
            Counter("inspector_decisions", "Final decisions recorded", [*st, "action"], registry=r), station
        )
        self.model_latency = Histogram(
            "inspector_model_latency_seconds",
            "Time in the pipeline per inspection",
            st,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        ).labels(station)
        self.queue = Gauge(
            "inspector_inference_queue", "Inspections running or waiting for the model", st, registry=r
        ).labels(station)
        self.rejected = Counter(
            "inspector_inference_rejected", "Inspections refused because the queue was full", st, registry=r
        ).labels(station)
        self.replays = Counter(
            "inspector_idempotent_replays", "Requests answered from a stored response", st, registry=r
        ).labels(station)
        self.webhooks = StationLabelled(
            Counter("inspector_webhook_attempts", "Webhook delivery attempts", [*st, "outcome"], registry=r), station
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every request by its route template and a known method: no client can add series."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            if method not in METHODS:
                method = "OTHER"
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
