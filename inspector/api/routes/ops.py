"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from inspector import __version__
from inspector.api.deps import AnyKey, MetricsDep, SettingsDep, SlotDep, StoreDep
from inspector.api.problems import responses
from inspector.api.schemas import HealthOut, ReadyOut
from inspector.api.service import PipelineSlot
from inspector.store import Store
from inspector.store.faults import disk_check

router = APIRouter(tags=["ops"])


@router.get("/v1/health", response_model=HealthOut, summary="Liveness")
async def health() -> dict[str, Any]:
    """The process answers. Needs no key."""
    return {"status": "ok", "version": __version__}


def readiness(store: Store, slot: PipelineSlot, min_free_mb: float = 0.0) -> dict[str, Any]:
    checks: dict[str, dict[str, Any]] = {}
    if slot.pipeline is not None:
        note = getattr(slot.pipeline, "operating_note", None)  # still serving, on the card's operating points
        detail = f"model {slot.pipeline.model_version} loaded" + (f"; {note}" if note else "")
        checks["model"] = {"ok": True, "detail": detail}
        status = getattr(slot.pipeline, "anomaly_status", None)
        if status is not None:  # informative only: without an anomaly model the station serves the detector alone
            checks["anomaly"] = {"ok": True, **status}
    else:
        checks["model"] = {"ok": False, "detail": slot.error or "not loaded"}
    try:
        store.db.ping()
        checks["database"] = {"ok": True, "detail": f"{store.db.dialect} answers"}
    except Exception as exc:
        checks["database"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    try:
        store.images.check_writable()
        checks["images"] = {"ok": True, "detail": f"{store.images.location} is writable"}
    except OSError as exc:
        checks["images"] = {"ok": False, "detail": f"{store.images.location}: {exc.strerror or exc}"}
    try:
        checks["disk"] = disk_check(store.disk_paths(), min_free_mb)
    except OSError as exc:
        checks["disk"] = {"ok": False, "detail": f"the disks cannot be read: {exc.strerror or exc}"}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


@router.get(
    "/v1/ready",
    response_model=ReadyOut,
    summary="Readiness",
    responses={503: {"model": ReadyOut, "description": "not ready; the checks say why"}, **responses(401, 403)},
)
async def ready(_key: AnyKey, settings: SettingsDep, store: StoreDep, slot: SlotDep) -> JSONResponse:
    """Ready when the model is loaded, the database and image folder are writable and have room; 503 otherwise."""
    body = await anyio.to_thread.run_sync(readiness, store, slot, settings.storage.min_free_mb)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "text exposition format"},
        **responses(401, 403),
    },
)
async def metrics(_key: AnyKey, m: MetricsDep) -> Response:
    """Requests and latency by route, inspections by grade and disposition, model latency, queue depth."""
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
