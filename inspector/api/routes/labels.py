"""Disposition labels: download one, print one again, and see how the print queue is doing.

The print state lives on its own route rather than in the inspection: the
inspection is the record as it was served, while a label's state changes in
the background for seconds after a decision (or for hours while a printer is
off), and a supervisor wants every label that is not printing, whatever the
item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from inspector.api.deps import AnyKey, OperatorKey, ServiceDep, SettingsDep, StoreDep
from inspector.api.problems import Problem, responses
from inspector.api.routes.inspections import UUID_PATTERN, InspectionId
from inspector.errors import NotFound
from inspector.labels import MEDIA_TYPES, render_label
from inspector.labels import jobs as label_jobs
from inspector.store.db import busy_means_retry
from inspector.store.inspections import get_inspection

router = APIRouter(tags=["labels"])


class LabelJobOut(BaseModel):
    """One label to print, and how printing it went."""

    id: str
    inspection_id: str
    decision_id: str | None = Field(description="the decision it was printed for (null: a reprint before any)")
    format: Literal["zpl", "pdf"]
    size: Literal["4x6", "2x1"]
    printer: str = Field(description="where it goes, as labels.printer said when it was queued")
    status: Literal["pending", "printed", "failed"] = Field(
        description="pending: not printed yet (last_error says why, when an attempt failed); failed: given up"
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="pending: when it is tried next")
    last_error: str | None
    created_at: datetime
    printed_at: datetime | None


class LabelJobPage(BaseModel):
    items: list[LabelJobOut]


@router.get(
    "/v1/inspections/{inspection_id}/label",
    summary="Download the label",
    response_class=Response,
    responses={
        200: {"content": {"application/zpl": {}, "application/pdf": {}}, "description": "the label"},
        **responses(401, 403, 404, 422),
    },
)
async def get_label(
    inspection_id: InspectionId,
    _key: AnyKey,
    service: ServiceDep,
    settings: SettingsDep,
    fmt: Annotated[
        Literal["zpl", "pdf"] | None, Query(alias="format", description="zpl (203 dpi) or pdf; default labels.format")
    ] = None,
    size: Annotated[Literal["4x6", "2x1"] | None, Query(description="inches; default labels.size")] = None,
) -> Response:
    """The route in large type, the grade, the RMA and LPN as Code 128, the inspection id as a QR code, the
    date and the station: after the decision in force, or the recommendation while there is none. The 2x1 in
    label holds the route, the grade and the QR code."""
    inspection = await service.get(inspection_id)
    kind = fmt or settings.labels.format
    data = await anyio.to_thread.run_sync(render_label, inspection, kind, size or settings.labels.size)
    return Response(
        content=data,
        media_type=MEDIA_TYPES[kind],
        headers={
            "Content-Disposition": f'inline; filename="label-{inspection_id}.{kind}"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/v1/inspections/{inspection_id}/label/print",
    status_code=202,
    response_model=LabelJobOut,
    summary="Print the label again",
    responses=responses(401, 403, 404, 409, 422),
)
async def print_label(
    inspection_id: InspectionId, _key: OperatorKey, store: StoreDep, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Queue the label (after the decision in force) for this station's printer; 409 when it has none."""
    labels = settings.labels
    printer = labels.printer
    if printer is None:
        raise Problem(409, "this station has no label printer (labels.printer)", code="no_label_printer")

    def write() -> dict[str, Any] | None:
        with store.db.write() as s:
            found = get_inspection(s, inspection_id)
            if found is None:
                return None
            last = found["decisions"][-1]["id"] if found["decisions"] else None
            row = label_jobs.enqueue(
                s, inspection_id, decision_id=last, fmt=labels.format, size=labels.size, printer=printer
            )
            return label_jobs.job_dict(row)

    with busy_means_retry():
        job = await anyio.to_thread.run_sync(write)
    if job is None:
        raise NotFound(f"no inspection with id {inspection_id}")
    worker = getattr(request.app.state, "label_worker", None)
    if worker is not None:
        worker.notify()
    return job


@router.get(
    "/v1/labels",
    response_model=LabelJobPage,
    summary="List label print jobs",
    responses=responses(401, 403, 422),
)
async def list_labels(
    _key: AnyKey,
    store: StoreDep,
    inspection_id: Annotated[str | None, Query(pattern=UUID_PATTERN, description="one inspection's labels")] = None,
    status: Annotated[Literal["pending", "printed", "failed"] | None, Query(description="only these")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Newest first: the operator page shows the newest label of the item on screen; ``?status=pending``
    lists what a printer that is down holds back."""

    def read() -> list[dict[str, Any]]:
        with store.db.read() as s:
            return label_jobs.list_jobs(s, inspection_id=inspection_id, status=status, limit=limit)

    return {"items": await anyio.to_thread.run_sync(read)}
