"""Prometheus metrics on a per-app registry (several apps may live in one process)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspector.api.problems import TooLarge

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every series the station exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "inspector_http_requests", "HTTP requests served", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "inspector_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inspections = Counter(
            "inspector_inspections",
            "Inspections stored, by grade and disposition",
            ["grade", "disposition", "source"],
            registry=r,
        )
        self.decisions = Counter("inspector_decisions", "Final decisions recorded", ["action"], registry=r)
        self.model_latency = Histogram(
            "inspector_model_latency_seconds",
            "Time in the pipeline per inspection",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue = Gauge("inspector_inference_queue", "Inspections running or waiting for the model", registry=r)
        self.rejected = Counter(
            "inspector_inference_rejected", "Inspections refused because the queue was full", registry=r
        )
        self.replays = Counter("inspector_idempotent_replays", "Requests answered from a stored response", registry=r)
        self.webhooks = Counter("inspector_webhook_attempts", "Webhook delivery attempts", ["outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every request by its route template (not its raw path, to bound cardinality)."""

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
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit, by Content-Length up front or by counting as they stream in."""

    def __init__(self, app: ASGIApp, limit_bytes: int) -> None:
        self.app = app
        self.limit = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await _too_large(scope, send, self.limit)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    from inspector.api.problems import problem_response

    exc = TooLarge(limit)
    response = problem_response(413, str(exc.detail), code="content_too_large", instance=scope.get("path"))
    response.headers["connection"] = "close"

    async def _no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, _no_body, send)
