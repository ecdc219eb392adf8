"""Build the FastAPI app from settings; no import-time globals.

``create_app(settings, pipeline=None)`` wires the store, the inference runner,
the inspection service and the webhook worker; the lifespan opens the store
(running migrations), loads the pipeline when none was injected, starts the
webhook worker and then every context manager in ``app.state.background``.
The API knows nothing of the bench station: whoever composes the process mounts
it on the app afterwards (``station.web.mount``), and it joins ``background``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from inspector import __version__
from inspector.api import problems
from inspector.api.budget import PixelBudget
from inspector.api.drift import DriftMonitor, drift_factory
from inspector.api.guards import BodyLimitMiddleware, KeyCache, KeyFirstMiddleware, SecurityHeadersMiddleware
from inspector.api.hotswap import ModelWatcher, watcher_factory
from inspector.api.metrics import Metrics, MetricsMiddleware
from inspector.api.retention import retention_factory
from inspector.api.returns import purge_factory
from inspector.api.routes import (
    decisions,
    feedback,
    inspections,
    labelmap,
    labels,
    models,
    ops,
    policy,
    returns,
    taxonomy,
    webhooks,
)
from inspector.api.runner import InferenceRunner
from inspector.api.schemas import ProblemOut
from inspector.api.service import InspectionService, PipelineSlot
from inspector.config import Settings
from inspector.labels.worker import LabelWorker
from inspector.pipeline import InspectionPipeline
from inspector.store import Store
from inspector.store.delivery import WebhookWorker

log = logging.getLogger("inspector.api")

BackgroundFactory = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DESCRIPTION = """\
The contract between the inspection station and the warehouse system.

Send the views of one returned item to `POST /v1/inspections` and get back the
detections, the condition grade with its reasons and the recommended disposition
with every alternative weighed. Record the final decision with
`POST /v1/inspections/{id}/decision`. Every endpoint but {open} needs an
API key in the `X-API-Key` header (roles: wms, operator, admin). Errors are
RFC 9457 problem details (`application/problem+json`) with a stable `code`.
"""

TAGS = [
    {"name": "inspections", "description": "Submit, read and list inspections; download their images."},
    {"name": "decisions", "description": "Final decisions: an audit trail, nothing overwritten."},
    {"name": "policy", "description": "The disposition policy in force."},
    {"name": "models", "description": "The model registry."},
    {"name": "labelmap", "description": "The defect classes the detector names, in id order, with their colours."},
    {"name": "feedback", "description": "Operator flags on detections, the drift summary: learning from the bench."},
    {"name": "webhooks", "description": "Signed event delivery (Standard Webhooks), at least once."},
    {"name": "labels", "description": "Disposition labels: download one, print it again, the print queue."},
    {"name": "returns", "description": "Expected returns: what the WMS says is coming back fills the item."},
    {"name": "ops", "description": "Liveness, readiness, metrics."},
]


def _load_pipeline(settings: Settings) -> InspectionPipeline:
    from inspector import pipeline as pipeline_module

    build = getattr(pipeline_module, "build_pipeline", None)
    if build is None:
        raise RuntimeError("this build has no pipeline builder (inspector.pipeline.build_pipeline)")
    built: InspectionPipeline = build(settings)
    return built


def create_app(settings: Settings | None = None, *, pipeline: InspectionPipeline | None = None) -> FastAPI:
    """The station's app. Inject ``pipeline`` in tests; otherwise it is built at start-up."""
    settings = settings or Settings()
    metrics = Metrics(settings.station_id)
    store = Store(settings.storage)
    slot = PipelineSlot()
    if pipeline is not None:
        slot.set(pipeline)
    runner = InferenceRunner(
        workers=settings.server.inference_workers,
        queue=settings.server.inference_queue,
        on_depth=metrics.queue.set,
    )
    worker = WebhookWorker(store.db, settings.webhooks, on_result=lambda o: metrics.webhooks.labels(o).inc())
    # labels.printer set: decisions queue a label that this worker prints (a bad setting fails here, at start)
    label_worker = LabelWorker(store.db, settings.labels) if settings.labels.printer is not None else None

    def committed() -> None:
        worker.notify()
        if label_worker is not None:
            label_worker.notify()

    service = InspectionService(settings, store, slot, runner, metrics, committed)
    watcher = ModelWatcher(settings, slot, on_pipeline=lambda: policy.restore_policy(store, slot))
    drift_monitor = DriftMonitor(settings, store, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(store.open)
        if slot.pipeline is None:
            try:
                slot.set(await anyio.to_thread.run_sync(_load_pipeline, settings))
            except Exception as exc:  # the API still starts: /v1/ready says why it cannot inspect
                slot.fail(f"{type(exc).__name__}: {exc}")
                log.warning("the pipeline did not load: %s", slot.error)
        try:
            await anyio.to_thread.run_sync(policy.restore_policy, store, slot)
        except Exception as exc:
            log.warning("the stored policy could not be restored: %s", exc)
        try:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(worker.running())
                for factory in list(app.state.background):
                    await stack.enter_async_context(factory(app))
                yield
        finally:
            await anyio.to_thread.run_sync(runner.shutdown)
            store.close()

    app = FastAPI(
        title="inspector",
        version=__version__,
        description=DESCRIPTION.replace(
            "{open}", "`/v1/health`, `/docs` and `/openapi.json`" if settings.server.public_docs else "`/v1/health`"
        ),
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.store = store
    app.state.pipeline_slot = slot
    app.state.runner = runner
    app.state.pixel_budget = PixelBudget(settings.server.max_request_pixels)
    app.state.webhook_worker = worker
    app.state.label_worker = label_worker
    app.state.inspections = service
    app.state.model_watcher = watcher
    app.state.drift = drift_monitor
    app.state.last_prune = None  # the report of the last scheduled prune (retention)
    app.state.background = [
        watcher_factory(watcher),
        drift_factory(drift_monitor),
        retention_factory(settings, store, on_report=lambda r: setattr(app.state, "last_prune", r)),
        purge_factory(service.returns),
    ]
    if label_worker is not None:
        app.state.background.append(label_worker.factory)

    problems.install(app)
    routers = (inspections, decisions, feedback, policy, models, labelmap, labels, returns, webhooks, ops, taxonomy)
    for module in routers:
        app.include_router(module.router)
    # Outermost last: metrics see every answer, every answer gets the security headers, the key is
    # checked before the body limits read anything.
    app.add_middleware(
        BodyLimitMiddleware,
        upload_bytes=int(settings.server.max_upload_mb * 1_000_000),
        json_bytes=int(settings.server.max_json_kb * 1_000),
        bulk={"/v1/returns": int(settings.server.max_bulk_mb * 1_000_000)},
    )
    app.add_middleware(KeyFirstMiddleware, settings=settings, keys=KeyCache(store))
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = ProblemOut.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            problems.document_defaults(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
