"""Inspections: submit the views of one item, read them back, list them, fetch their images."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from inspector.api.deps import AnyKey, PixelBudgetDep, ServiceDep, SettingsDep
from inspector.api.guards import strict_json
from inspector.api.idempotency import scoped_key
from inspector.api.media import decode_all, digests_of, request_pixels
from inspector.api.problems import Problem, responses, validation_errors
from inspector.api.schemas import InspectionOut, InspectionPage, ItemIn
from inspector.items import ItemInfo
from inspector.types import DispositionPath, GradeLevel

router = APIRouter(prefix="/v1/inspections", tags=["inspections"])

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
InspectionId = Annotated[str, Path(pattern=UUID_PATTERN, description="the inspection id (a UUID)")]


def parse_item(raw: str | None) -> ItemInfo:
    """The optional ``item`` form field: a JSON object checked against :class:`ItemIn`."""
    if raw is None or not raw.strip():
        return ItemInfo()
    try:
        data = strict_json(raw, where="item")
    except json.JSONDecodeError as exc:
        raise Problem(422, f"item is not valid JSON: {exc.msg} at character {exc.pos}", code="bad_item_json") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise Problem(422, f"item is not valid JSON: {exc}", code="bad_item_json") from exc
    if not isinstance(data, dict):
        raise Problem(422, "item must be a JSON object", code="bad_item_json")
    try:
        model = ItemIn.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ["item", *e["loc"]]} for e in validation_errors(exc.errors())]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        raise Problem(422, detail, code="invalid_item", errors=errors) from exc
    return model.to_item()


def multipart_body(request: Request) -> None:
    """Refuse another kind of body with 415 and what to send, rather than "images: field required"."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise Problem(
            415,
            f"send the views as multipart/form-data with one 'images' part per view, not {kind or 'no content type'}",
            code="unsupported_media_type",
        )


@router.post(
    "",
    status_code=201,
    response_model=InspectionOut,
    summary="Inspect one returned item",
    responses=responses(401, 403, 409, 413, 415, 422, 503, 507),
)
async def create_inspection(
    key: AnyKey,
    _multipart: Annotated[None, Depends(multipart_body)],
    service: ServiceDep,
    settings: SettingsDep,
    budget: PixelBudgetDep,
    images: Annotated[list[UploadFile], File(description="1 to 8 views of one item (JPEG, PNG or WebP), in order")],
    item: Annotated[
        str | None,
        Form(description='JSON object: {"rma", "lpn", "sku", "category", "return_reason", "price", ...}'),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="a retry with the same key and body gets the stored response; another body gets 409 "
            "(keys are per API key: another client's same key is another request)",
        ),
    ] = None,
) -> Response:
    """Run the pipeline on the views, store everything, and return the inspection.

    The response holds the detections per view, the grade with its reasons, the
    disposition with every alternative weighed, the model, rubric and policy
    versions, and timings. ``503`` with ``Retry-After`` when the model queue is full.
    """
    max_views = settings.server.max_views
    if not 1 <= len(images) <= max_views:
        raise Problem(422, f"send 1 to {max_views} files in 'images', got {len(images)}", code="bad_view_count")
    item_info = parse_item(item)
    blobs = [await f.read() for f in images]
    limits = settings.server.max_pixels, settings.server.max_request_pixels
    pixels = await anyio.to_thread.run_sync(request_pixels, blobs, *limits)
    async with budget.hold(pixels):  # decoded frames stay in memory until the inspection is stored
        t0 = time.perf_counter()
        fit = service.model_input_side()
        # the digests (idempotency, storage) on the other core while this one decodes
        hashing = asyncio.ensure_future(anyio.to_thread.run_sync(digests_of, blobs))
        try:
            frames = await anyio.to_thread.run_sync(decode_all, blobs, settings.server.max_pixels, fit)
        finally:
            digests = await hashing
        decode_ms = (time.perf_counter() - t0) * 1000
        created = await service.create(
            frames,
            item_info,
            idempotency_key=scoped_key(key.id, idempotency_key) if idempotency_key is not None else None,
            source="api",
            images=blobs,
            created_by=key.id,
            timings_ms={"decode": round(decode_ms, 2)},
            digests=digests,
        )
        body, replayed = created.body, created.replayed
        del frames, created  # the budget is given back as the frames (held by the result too) are let go
    headers = {"Location": f"/v1/inspections/{body['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    # The body is already InspectionOut as served (validated and dumped by the service): written as it
    # is, not validated and serialised a second time (the schema stays in the OpenAPI document).
    return JSONResponse(body, status_code=201, headers=headers)


@router.get("", response_model=InspectionPage, summary="List inspections", responses=responses(401, 403, 422))
async def list_inspections(
    _key: AnyKey,
    service: ServiceDep,
    rma: Annotated[str | None, Query(max_length=200)] = None,
    sku: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; inspections created at or after it")] = None,
    grade: GradeLevel | None = None,
    disposition: DispositionPath | None = None,
    station: Annotated[str | None, Query(max_length=100, description="the station that made the inspection")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Newest first, filtered by any of rma, sku, since, grade, disposition (recommended) and station.

    Paged by a keyset cursor: inspections stored meanwhile, on any station, never shift a page.
    """
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return await service.list(
        rma=rma,
        sku=sku,
        since=since,
        grade=grade.value if grade else None,
        disposition=disposition.value if disposition else None,
        station=station,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/{inspection_id}",
    response_model=InspectionOut,
    summary="Read one inspection",
    responses=responses(401, 403, 404, 422),
)
async def get_inspection(inspection_id: InspectionId, _key: AnyKey, service: ServiceDep) -> dict[str, Any]:
    """The recommendation as first served, every decision since (oldest first), and ``final``."""
    return await service.get(inspection_id)


@router.get(
    "/{inspection_id}/images/{n}",
    summary="Download one view",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}, "description": "the image"},
        **responses(401, 403, 404, 410, 422),
    },
)
async def get_image(
    inspection_id: InspectionId,
    n: Annotated[int, Path(ge=0, le=31, description="the view number, from 0")],
    _key: AnyKey,
    service: ServiceDep,
    annotated: Annotated[bool, Query(description="1: a JPEG with the detections drawn")] = False,
) -> Response:
    """The original bytes as uploaded, or with ``?annotated=1`` a JPEG with the boxes drawn.

    ``410 image_pruned`` once the retention policy has removed the views (the inspection stays readable).
    """
    data, media_type = await service.image(inspection_id, n, annotated=annotated)
    return Response(
        content=data, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"}
    )


@router.get(
    "/{inspection_id}/views/{n}/anomaly.png",
    summary="The anomaly heat map over one view",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the view at its size, the anomaly map over the item"},
        **responses(401, 403, 404, 410, 422),
    },
)
async def get_anomaly_image(
    inspection_id: InspectionId,
    n: Annotated[int, Path(ge=0, le=31, description="the view number, from 0")],
    _key: AnyKey,
    service: ServiceDep,
) -> Response:
    """Where the anomaly model found the item strange: red is far above its threshold, blue below it; the
    regions no detection explains are boxed in white. ``404`` when no anomaly model scored the view."""
    data = await service.anomaly_image(inspection_id, n)
    return Response(content=data, media_type="image/png", headers={"Cache-Control": "private, max-age=31536000"})
