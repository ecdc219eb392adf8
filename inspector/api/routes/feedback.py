"""Learning from the bench: operator flags on detections, the drift summary, and serving a new promotion now."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query

from inspector.api.deps import AdminKey, AnyKey, DriftDep, OperatorKey, StoreDep, WatcherDep
from inspector.api.feedback_schemas import DriftOut, FlagIn, FlagOut, FlagsOut, ReloadOut
from inspector.api.problems import Problem, responses
from inspector.api.routes.inspections import InspectionId
from inspector.feedback.source import add_flag, flag_dict, flags_of
from inspector.labelmap import default_labelmap
from inspector.store import Store
from inspector.store import inspections as repo

router = APIRouter(tags=["feedback"])


def check_flag(body: dict[str, Any], flag: FlagIn) -> str | None:
    """Why a flag does not fit the inspection it is about, or None when it does."""
    views = {int(v["n"]): v for v in body.get("views", [])}
    view = views.get(flag.view)
    if view is None:
        return f"the inspection has no view {flag.view} (it has {len(views)})"
    dets = view.get("detections", [])
    if flag.kind == "anomaly":
        assert flag.region is not None
        regions = (view.get("anomaly") or {}).get("regions", [])
        if flag.region >= len(regions):
            return f"view {flag.view} has no unexplained region {flag.region} (it has {len(regions)})"
        return None  # the operator names the class: a new one is what the flag is for
    if flag.kind == "false_defect":
        assert flag.detection is not None
        if flag.detection >= len(dets):
            return f"view {flag.view} has no detection {flag.detection} (it has {len(dets)})"
    if flag.box is not None:
        w, h = float(view["width"]), float(view["height"])
        x1, y1, x2, y2 = flag.box
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            return f"the box {flag.box} is not inside the {w:.0f}x{h:.0f} view"
    if flag.class_name is not None:
        known = set(default_labelmap().defect_names) | {d["class_name"] for d in dets}
        if flag.class_name not in known:
            return f"unknown class {flag.class_name!r}; expected one of {', '.join(sorted(known))}"
    return None


def _add(
    store: Store, inspection_id: str, flag: FlagIn, actor: str, key_id: str | None, key_name: str | None
) -> dict[str, Any]:
    with store.db.write() as s:
        body = repo.inspection_body(s, inspection_id)
        if body is None:
            raise Problem(404, f"no inspection with id {inspection_id}", code="not_found")
        problem = check_flag(body, flag)
        if problem is not None:
            raise Problem(422, problem, code="invalid_flag")
        class_name = flag.class_name
        box = flag.box
        if flag.kind == "false_defect" and flag.detection is not None:
            class_name = body["views"][flag.view]["detections"][flag.detection]["class_name"]
        if flag.kind == "anomaly" and flag.region is not None:  # stored as a box: the export labels it
            box = body["views"][flag.view]["anomaly"]["regions"][flag.region]["xyxy"]
        row = add_flag(
            s,
            inspection_id,
            kind=flag.kind,
            view=flag.view,
            detection=flag.detection,
            class_name=class_name,
            box=box,
            note=flag.note,
            actor=actor,
            key_id=key_id,
            key_name=key_name,
            source="api",
        )
        return flag_dict(row)


@router.post(
    "/v1/inspections/{inspection_id}/flags",
    status_code=201,
    response_model=FlagOut,
    summary="Flag a missed or a false defect, or confirm an unexplained region",
    responses=responses(401, 403, 404, 422),
)
async def post_flag(inspection_id: InspectionId, flag: FlagIn, key: OperatorKey, store: StoreDep) -> dict[str, Any]:
    """A label candidate from the operator: ``missed_defect`` (optionally with a box and a class),
    ``false_defect`` (pointing at one of the view's detections) or ``anomaly`` (one of the view's unexplained
    regions confirmed as damage of the class named, which may be new). Appended; the inspection is unchanged."""
    return await anyio.to_thread.run_sync(_add, store, inspection_id, flag, key.name, key.id, key.name)


@router.get(
    "/v1/inspections/{inspection_id}/flags",
    response_model=FlagsOut,
    summary="The operator flags of an inspection",
    responses=responses(401, 403, 404),
)
async def get_flags(inspection_id: InspectionId, _key: AnyKey, store: StoreDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with store.db.read() as s:
            if repo.inspection_body(s, inspection_id) is None:
                raise Problem(404, f"no inspection with id {inspection_id}", code="not_found")
            return {"items": flags_of(s, [inspection_id])[inspection_id]}

    return await anyio.to_thread.run_sync(read)


@router.get("/v1/feedback/drift", response_model=DriftOut, summary="Drift summary", responses=responses(401, 403))
async def get_drift(
    _key: AnyKey,
    monitor: DriftDep,
    fresh: Annotated[bool, Query(description="recompute now instead of a report up to 5 s old")] = False,
) -> dict[str, Any]:
    """The newest day's grade and disposition mix, mean confidence and override rate per class, against the
    days before it; ``warnings`` lists every figure that moved beyond its threshold (also in ``/metrics``)."""
    return await anyio.to_thread.run_sync(lambda: monitor.refresh() if fresh else monitor.current(5.0))


@router.post(
    "/v1/models/reload",
    response_model=ReloadOut,
    tags=["models"],
    summary="Serve the promoted version now",
    responses=responses(401, 403),
)
async def reload_model(_key: AdminKey, watcher: WatcherDep) -> dict[str, Any]:
    """Look at the registry's active versions (the detector's, then the anomaly model's) now instead of at the
    next poll; in-flight inspections finish on the models they started with."""

    def both() -> dict[str, Any]:
        return watcher.check(force=True) | {"anomaly": watcher.check_anomaly(force=True)}

    return await anyio.to_thread.run_sync(both)
