"""The inspection service: the one path from frames to a stored, announced inspection.

The HTTP routes and the bench station's capture loop both call it
(``app.state.inspections``), so an inspection made at the bench and one posted
by the WMS are stored, counted and announced the same way. It speaks in the
station's own errors (:mod:`inspector.errors`); the API edge turns them into HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy.orm import Session

from inspector.api.idempotency import IdempotencyKeys, request_hash
from inspector.api.media import (
    cached_annotated_jpeg,
    digests_of,
    encode_heat,
    encode_jpeg,
    heat_overlay_png,
    heat_path,
    keep_copy,
    sniff_media_type,
)
from inspector.api.metrics import Metrics
from inspector.api.returns import ReturnBook
from inspector.api.runner import InferenceRunner, QueueFull
from inspector.api.schemas import DecisionIn, DecisionOut, as_served
from inspector.config import Settings
from inspector.errors import Broken, Gone, InvalidInput, NotFound, Unavailable
from inspector.items import ItemInfo
from inspector.labels import jobs as label_jobs
from inspector.pipeline import InspectionPipeline, item_record
from inspector.store import Store
from inspector.store import inspections as repo
from inspector.store.db import busy_means_retry
from inspector.store.faults import check_space, disk_check, storage_errors
from inspector.store.models import ImageRow
from inspector.store.retention import pruned_at, still_named
from inspector.store.webhooks import add_event
from inspector.types import Frame, Inspection

log = logging.getLogger("inspector.api")


@dataclass
class PipelineSlot:
    """The pipeline in service, or why there is none."""

    pipeline: InspectionPipeline | None = None
    error: str | None = "the pipeline is not loaded yet"
    loaded_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def set(self, pipeline: InspectionPipeline) -> None:
        self.pipeline = pipeline
        self.error = None
        self.loaded_at = time.time()

    def fail(self, reason: str) -> None:
        self.pipeline = None
        self.error = reason


@dataclass(frozen=True, slots=True)
class Created:
    """One stored inspection: its body as served and, when it ran for this request, the pipeline's result."""

    body: dict[str, Any]
    inspection: Inspection | None = None  # None: the stored body of an earlier request with the same key

    @property
    def replayed(self) -> bool:
        return self.inspection is None


@dataclass(frozen=True, slots=True)
class _Request:
    """One inspection to run, with everything about it worked out once."""

    frames: list[Frame]
    item: ItemInfo
    item_json: dict[str, Any]
    images: list[bytes]
    media_types: list[str]
    digests: list[str]
    req_hash: str
    source: str
    created_by: str | None
    timings_ms: dict[str, float]
    t0: float


class InspectionService:
    """Create, read, list and decide inspections; one instance per app (``app.state.inspections``)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        slot: PipelineSlot,
        runner: InferenceRunner,
        metrics: Metrics,
        notify: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.slot = slot
        self.runner = runner
        self.metrics = metrics
        self._notify = notify
        self.keys = IdempotencyKeys(store, settings.server.idempotency_wait_s)
        self.returns = ReturnBook(settings.returns, store)  # what the WMS said is coming back fills the item

    def model_ready(self) -> bool:
        """Whether inspections can run now (the station's page shows it)."""
        return self.slot.pipeline is not None

    # ------------------------------------------------------------ create

    def model_input_side(self) -> int | None:
        """The long side an upload is decoded to: the model's input, or the camera's when the detector tiles.

        A tiling detector looks at the pixels at the bench camera's scale (the one its model learned
        defects at); a 20-megapixel photo is brought down to that side first, or its tiles would
        show the defects larger than the model knows them and cost tens of passes.
        """
        detector = getattr(self.slot.pipeline, "detector", None)
        if getattr(detector, "native_resolution", False):
            return max(self.settings.camera.width, self.settings.camera.height)
        side = getattr(detector, "imgsz", None)
        return side if isinstance(side, int) and side > 0 else None

    async def create(
        self,
        frames: list[Frame],
        item: ItemInfo,
        *,
        idempotency_key: str | None = None,
        source: str = "api",
        images: list[bytes] | None = None,
        created_by: str | None = None,
        timings_ms: dict[str, float] | None = None,
        digests: list[str] | None = None,
    ) -> Created:
        """Inspect one item (1..max_views frames), store it and its images, queue its webhook.

        With an idempotency key, a repeat of the same request gets the stored body
        back (``replayed``) and a different request with the same key raises
        :class:`~inspector.errors.Conflict`. ``images`` are the original encoded
        bytes of the frames (JPEG, PNG, WebP); without them the frames are stored
        as JPEG. ``digests``: the sha256 of each of ``images`` when the caller has them already.
        """
        t0 = time.perf_counter()
        max_views = self.settings.server.max_views
        if not 1 <= len(frames) <= max_views:
            raise InvalidInput(f"an inspection has 1 to {max_views} views, got {len(frames)}", code="bad_view_count")
        if images is None:
            images = await anyio.to_thread.run_sync(lambda: [encode_jpeg(f.image) for f in frames])
        if len(images) != len(frames):
            raise InvalidInput("images and frames differ in number", code="bad_view_count")
        if digests is None or len(digests) != len(images):
            digests = await anyio.to_thread.run_sync(digests_of, images)
        item_json = item_record(item)
        request = _Request(
            frames=frames,
            item=item,
            item_json=item_json,
            images=images,
            media_types=[sniff_media_type(b) for b in images],
            digests=digests,
            req_hash=request_hash(digests, item_json),
            source=source,
            created_by=created_by,
            timings_ms=dict(timings_ms or {}),
            t0=t0,
        )
        if idempotency_key is None:
            return await self._run_and_store(request, None, None)
        key = idempotency_key

        def replay(body: dict[str, Any]) -> Created:
            self.metrics.replays.inc()
            return Created(body)

        with storage_errors(self.store.disk_paths()):  # also a claim's release that fails in the same outage
            return await self.keys.once(
                key, request.req_hash, lambda lease: self._run_and_store(request, key, lease), replay
            )

    async def _run_and_store(self, request: _Request, key: str | None, lease: datetime | None) -> Created:
        """Run the pipeline and store the result, under the idempotency ``key`` this request holds."""
        pipeline = self.slot.pipeline
        if pipeline is None:
            raise Unavailable(
                f"the station cannot inspect yet: {self.slot.error}", code="model_not_ready", retry_after=30
            )
        await anyio.to_thread.run_sync(self.check_space)
        # the expected return fills what the item does not say (never raises for a WMS that is down)
        t_return = time.perf_counter()
        item, matched = await anyio.to_thread.run_sync(self.returns.resolve, request.item)
        return_ms = (time.perf_counter() - t_return) * 1000
        frames, images = request.frames, request.images
        inspection_id = repo.new_id()
        station_id = self.settings.station_id
        # The views are written and fsynced while the model runs (their row still commits after both);
        # a request the queue turns away writes nothing.
        images_stored: asyncio.Future[None] | None = None
        if self.runner.depth < self.runner.capacity:
            images_stored = asyncio.ensure_future(anyio.to_thread.run_sync(self._put_images, images))
            images_stored.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            inspection, wait_s, run_s = await self.runner.run(
                lambda: pipeline.inspect(frames, item, inspection_id=inspection_id, station_id=station_id)
            )
        except QueueFull:
            self.metrics.rejected.inc()
            raise
        self.metrics.model_latency.observe(run_s)
        timings = dict(request.timings_ms)
        timings["return"] = round(return_ms, 2)
        timings.update({k: round(float(v), 2) for k, v in inspection.timings_ms.items()})
        timings["queue"] = round(wait_s * 1000, 2)
        timings["pipeline"] = round(run_s * 1000, 2)
        timings["total"] = round((time.perf_counter() - request.t0) * 1000 + timings.get("decode", 0.0), 2)
        body = self._body(inspection, request, pipeline, timings)
        body["return"] = matched.to_dict() if matched is not None else None

        stored_images = [
            repo.StoredImage(
                n=i,
                sha256=request.digests[i],
                media_type=request.media_types[i],
                size_bytes=len(images[i]),
                width=f.size[0],
                height=f.size[1],
                camera_id=f.camera_id,
            )
            for i, f in enumerate(frames)
        ]

        served = as_served(repo.compose(body, []))

        def persist() -> None:
            if images_stored is None:
                self._put_images(images)
            with self.store.db.write() as s:
                self._hold_views(s, request)
                repo.save_inspection(
                    s,
                    body,
                    images=stored_images,
                    source=request.source,
                    request_hash=request.req_hash,
                    created_by=request.created_by,
                    idempotency_key=key,
                    idempotency_lease=lease,
                )
                add_event(s, "inspection.completed", served)
            self._keep_heat(inspection, request.digests)

        try:
            with storage_errors(self.store.disk_paths()):
                if images_stored is not None:
                    await images_stored  # on disk and synced before the row that names them commits
                await anyio.to_thread.run_sync(persist)
        except Exception as exc:
            if getattr(exc, "code", None) != "storage_unavailable":  # out of reach: a clean-up would wait as long
                await anyio.to_thread.run_sync(self._discard_views, request.digests)
            raise
        self._notify()
        self.metrics.inspections.labels(body["grade"]["level"], body["disposition"]["path"], request.source).inc()
        return Created(served, inspection)

    def _keep_heat(self, inspection: Inspection, digests: list[str]) -> None:
        """The anomaly maps beside their views, for the heat-map picture (a lost one is only logged)."""
        for n, view in enumerate(inspection.views):
            found = view.anomaly
            if found is None or found.heat is None:
                continue
            path = heat_path(self.store.images.path_for(digests[n]), inspection.id, n)
            keep_copy(path, encode_heat(found.heat, found.pixel_level))

    def _put_images(self, images: list[bytes]) -> None:
        for data in images:
            self.store.images.put(data)

    def check_space(self) -> None:
        """507 before the model runs while a disk of the store has less than ``storage.min_free_mb`` free."""
        check_space(self.store.disk_paths(), self.settings.storage.min_free_mb)

    def storage_check(self) -> dict[str, Any]:
        """Free space and read-only state of the store's disks, for the operator page's banner."""
        return disk_check(self.store.disk_paths(), self.settings.storage.min_free_mb)

    def _hold_views(self, s: Session, request: _Request) -> None:
        """Make sure the views are on disk as their row commits, under the lock ``_discard_views`` takes.

        A failed request sharing a view with this one may have just removed it; it is written again.
        """
        self.store.db.lock_images(s, request.digests)
        for data, digest in zip(request.images, request.digests, strict=True):
            if not self.store.images.exists(digest):
                self.store.images.put(data)

    def _discard_views(self, digests: list[str]) -> None:
        """After a store failed: delete its views that no stored inspection names (a full disk keeps no orphans)."""
        try:
            with self.store.db.write() as s:
                unique = self.store.db.lock_images(s, digests)
                named = still_named(s, unique)
                for digest in unique:
                    if digest not in named:
                        self.store.images.remove(digest)
        except Exception as exc:  # the database is out of reach too: the files stay, named by nothing
            log.warning("could not remove the views of an inspection that was not stored: %s", exc)

    def _body(
        self, inspection: Inspection, request: _Request, pipeline: InspectionPipeline, timings: dict[str, float]
    ) -> dict[str, Any]:
        iid = inspection.id
        views = []
        for n, view in enumerate(inspection.views):
            f = view.frame
            views.append(
                {
                    "n": n,
                    "camera_id": f.camera_id,
                    "captured_at": f.captured_at.isoformat(),
                    "width": f.size[0],
                    "height": f.size[1],
                    "image": {
                        "sha256": request.digests[n],
                        "media_type": request.media_types[n],
                        "size_bytes": len(request.images[n]),
                    },
                    "image_url": f"/v1/inspections/{iid}/images/{n}",
                    "annotated_url": f"/v1/inspections/{iid}/images/{n}?annotated=1",
                    "detections": view.detections.to_records(),
                    "anomaly": (
                        view.anomaly.to_dict() | {"heat_url": f"/v1/inspections/{iid}/views/{n}/anomaly.png"}
                        if view.anomaly is not None
                        else None
                    ),
                }
            )
        return {
            "id": iid,
            "created_at": inspection.created_at.isoformat(),
            "station_id": inspection.station_id,
            "source": request.source,
            "item": dict(inspection.item) if inspection.item else request.item_json,
            "views": views,
            "grade": inspection.grade.to_dict(),
            "disposition": inspection.disposition.to_dict(),
            "versions": {
                "model": inspection.model_version or pipeline.model_version,
                "policy": inspection.disposition.policy_version or pipeline.policy_version,
                "rubric": inspection.grade.rubric_version or pipeline.rubric_version,
                **({"taxonomy": v} if (v := getattr(pipeline, "taxonomy_version", None)) else {}),
            },
            "timings_ms": timings,
        }

    # -------------------------------------------------------------- read

    async def get(self, inspection_id: str) -> dict[str, Any]:
        """One inspection as served; :class:`~inspector.errors.NotFound` when there is none."""

        def read() -> dict[str, Any] | None:
            with self.store.db.read() as s:
                found = repo.get_inspection(s, inspection_id)
            return as_served(found) if found is not None else None

        body = await anyio.to_thread.run_sync(read)
        if body is None:
            raise NotFound(f"no inspection with id {inspection_id}")
        return body

    async def list(
        self,
        *,
        rma: str | None = None,
        sku: str | None = None,
        since: datetime | None = None,
        grade: str | None = None,
        disposition: str | None = None,
        station: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """One page, newest first: ``{"items": [...], "next_cursor": str | None}``."""

        def read() -> tuple[list[dict[str, Any]], str | None]:
            with self.store.db.read() as s:
                return repo.list_inspections(
                    s,
                    rma=rma,
                    sku=sku,
                    since=since,
                    grade=grade,
                    disposition=disposition,
                    station=station,
                    cursor=cursor,
                    limit=limit,
                )

        items, next_cursor = await anyio.to_thread.run_sync(read)
        return {"items": [as_served(b) for b in items], "next_cursor": next_cursor}

    def _stored_view(self, inspection_id: str, n: int, *, body: bool) -> tuple[bytes, ImageRow, dict[str, Any]]:
        """View ``n``'s bytes, its image row and (``body``) the inspection as stored; 404, 410 or 500 otherwise."""
        with self.store.db.read() as s:
            row = repo.get_image(s, inspection_id, n)
            stored = repo.inspection_body(s, inspection_id) if body and row is not None else None
            pruned = pruned_at(s, inspection_id) if row is not None else None
        if row is None:
            raise NotFound(f"inspection {inspection_id} has no image {n}")
        if pruned is not None:
            raise Gone(
                f"the views of inspection {inspection_id} were pruned on {pruned.date().isoformat()} "
                "by the retention policy; its record is kept",
                code="image_pruned",
                pruned_at=pruned.isoformat(),
            )
        try:
            data = self.store.images.get(row.sha256)
        except FileNotFoundError as exc:
            raise Broken("the image file is missing from the store", code="image_missing") from exc
        return data, row, stored or {}

    async def image(self, inspection_id: str, n: int, *, annotated: bool = False) -> tuple[bytes, str]:
        """The original bytes of view ``n`` and their media type, or a JPEG with the boxes drawn."""

        def read() -> tuple[bytes, str]:
            data, row, body = self._stored_view(inspection_id, n, body=annotated)
            if not annotated:
                return data, row.media_type
            records = body["views"][n]["detections"] if body else []
            image = self.store.images.path_for(row.sha256)
            return cached_annotated_jpeg(image, data, records, self.settings.server.max_pixels), "image/jpeg"

        return await anyio.to_thread.run_sync(read)

    async def anomaly_image(self, inspection_id: str, n: int) -> bytes:
        """View ``n`` as a PNG of its size with the anomaly map over the item; 404 when no model scored it."""

        def read() -> bytes:
            data, row, body = self._stored_view(inspection_id, n, body=True)
            anomaly = body["views"][n].get("anomaly") if body else None
            if anomaly is None:
                raise NotFound(f"view {n} of inspection {inspection_id} was not scored by an anomaly model")
            try:
                heat = heat_path(self.store.images.path_for(row.sha256), inspection_id, n).read_bytes()
            except FileNotFoundError as exc:
                raise NotFound(
                    f"the anomaly map of view {n} of inspection {inspection_id} was not kept", code="heat_missing"
                ) from exc
            return heat_overlay_png(data, heat, anomaly, self.settings.server.max_pixels)

        return await anyio.to_thread.run_sync(read)

    # ------------------------------------------------------------ decide

    async def decide(
        self,
        inspection_id: str,
        decision: DecisionIn,
        actor: str,
        *,
        key_id: str | None = None,
        key_name: str | None = None,
        source: str = "api",
    ) -> dict[str, Any]:
        """Record a final decision (accept or override); returns the inspection with every decision.

        The recommendation is never changed: each decision is a new row, and the
        newest one is the outcome in force (``final``).
        """

        def write() -> dict[str, Any] | None:
            with self.store.db.write() as s:
                rec = repo.inspection_body(s, inspection_id)
                if rec is None:
                    return None
                grade = decision.grade.value if decision.grade is not None else rec["grade"]["level"]
                disp = decision.disposition.value if decision.disposition is not None else rec["disposition"]["path"]
                row = repo.add_decision(
                    s,
                    inspection_id,
                    action=decision.action,
                    grade=grade,
                    disposition=disp,
                    reason_code=decision.reason_code,
                    note=decision.note,
                    actor=decision.actor or actor,
                    key_id=key_id,
                    key_name=key_name,
                    source=source,
                )
                labels = self.settings.labels
                if labels.printer is not None:  # printed later by the label worker: a printer never holds a decision
                    label_jobs.enqueue(
                        s,
                        inspection_id,
                        decision_id=row.id,
                        fmt=labels.format,
                        size=labels.size,
                        printer=labels.printer,
                    )
                found = repo.get_inspection(s, inspection_id)
                assert found is not None
                full = as_served(found)
                add_event(
                    s,
                    "inspection.decided",
                    {
                        "inspection_id": inspection_id,
                        "decision": DecisionOut.model_validate(repo.decision_dict(row)).model_dump(mode="json"),
                        "final": full["final"],
                    },
                )
                return full

        with busy_means_retry():
            out = await anyio.to_thread.run_sync(write)
        if out is None:
            raise NotFound(f"no inspection with id {inspection_id}")
        self._notify()
        self.metrics.decisions.labels(decision.action).inc()
        return out
