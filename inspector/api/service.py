"""The inspection service: the one path from frames to a stored, announced inspection.

The HTTP routes and the bench station's capture loop both call it
(``app.state.inspections``), so an inspection made at the bench and one posted
by the WMS are stored, counted and announced the same way.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import cv2
import numpy as np
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from inspector.api.metrics import Metrics
from inspector.api.problems import Problem, validation_errors
from inspector.api.runner import InferenceRunner, QueueFull
from inspector.api.schemas import DecisionIn, DecisionOut, InspectionOut, item_dict
from inspector.config import Settings
from inspector.items import ItemInfo
from inspector.pipeline import InspectionPipeline
from inspector.store import Store
from inspector.store import inspections as repo
from inspector.store.images import MEDIA_TYPES, sha256_hex
from inspector.store.webhooks import add_event
from inspector.types import Detections, Frame, Inspection


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


def sniff_media_type(data: bytes) -> str:
    """The media type of JPEG, PNG or WebP bytes from their magic numbers."""
    if data[:3] == b"\xff\xd8\xff":
        return MEDIA_TYPES["JPEG"]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return MEDIA_TYPES["PNG"]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MEDIA_TYPES["WEBP"]
    return "application/octet-stream"


def encode_jpeg(image: np.ndarray[Any, Any], quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return bytes(buf.tobytes())


def digests_of(images: Sequence[bytes]) -> list[str]:
    """The sha256 of each image (hashlib lets go of the GIL: run it beside the decode)."""
    return [sha256_hex(b) for b in images]


def request_hash(image_digests: Sequence[str], item: dict[str, Any]) -> str:
    """What makes two requests "the same" for idempotency: the image bytes and the item, in order."""
    canon = json.dumps({"images": list(image_digests), "item": item}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def detections_of(records: Sequence[dict[str, Any]]) -> Detections:
    """Rebuild drawable detections from their stored JSON rows."""
    if not records:
        return Detections.empty(("item",))
    top = max(int(r["class_id"]) for r in records)
    names = [str(i) for i in range(top + 1)]
    for r in records:
        names[int(r["class_id"])] = str(r["class_name"])
    return Detections(
        xyxy=np.array([r["xyxy"] for r in records], dtype=np.float32),
        confidence=np.array([r["confidence"] for r in records], dtype=np.float32),
        class_id=np.array([r["class_id"] for r in records], dtype=np.int64),
        class_names=tuple(names),
    )


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def as_served(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON exactly as the HTTP API serves it (pydantic's datetime and number forms)."""
    return InspectionOut.model_validate(body).model_dump(mode="json")


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
        self._background: set[asyncio.Future[None]] = set()  # key releases of cancelled requests

    def model_ready(self) -> bool:
        """Whether inspections can run now (the station's page shows it)."""
        return self.slot.pipeline is not None

    # ------------------------------------------------------------ create

    def model_input_side(self) -> int | None:
        """The long side the serving model letterboxes to: uploads are decoded no larger than that."""
        side = getattr(getattr(self.slot.pipeline, "detector", None), "imgsz", None)
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
        replayed: list[bool] | None = None,
        digests: list[str] | None = None,
    ) -> dict[str, Any]:
        """Inspect one item (1..max_views frames), store it and its images, queue its webhook.

        Returns the inspection JSON (the body of ``POST /v1/inspections``). With an
        idempotency key, a repeat of the same request returns the stored body and a
        different request with the same key raises a 409 :class:`Problem`.
        ``images`` are the original encoded bytes of the frames (JPEG, PNG, WebP);
        without them the frames are stored as JPEG. ``replayed``, when given, gets
        True appended if the body came from an earlier request. ``digests``: the
        sha256 of each of ``images`` when the caller has them already.
        """
        t0 = time.perf_counter()
        max_views = self.settings.server.max_views
        if not 1 <= len(frames) <= max_views:
            raise Problem(422, f"an inspection has 1 to {max_views} views, got {len(frames)}", code="bad_view_count")
        if images is None:
            images = await anyio.to_thread.run_sync(lambda: [encode_jpeg(f.image) for f in frames])
        if len(images) != len(frames):
            raise Problem(422, "images and frames differ in number", code="bad_view_count")
        if digests is None or len(digests) != len(images):
            digests = await anyio.to_thread.run_sync(digests_of, images)
        item_json = item_dict(item)
        req_hash = request_hash(digests, item_json)

        if idempotency_key is None:
            return await self._run_and_store(
                frames, item, item_json, images, digests, req_hash, None, None, source, created_by, timings_ms, t0
            )
        for _ in range(3):  # a lease that ran out mid-way: the key went to a retry, so answer as that retry does
            stored, lease = await self._claim(idempotency_key, req_hash)
            if stored is not None:
                self.metrics.replays.inc()
                if replayed is not None:
                    replayed.append(True)
                return stored
            try:
                return await self._run_and_store(
                    frames,
                    item,
                    item_json,
                    images,
                    digests,
                    req_hash,
                    idempotency_key,
                    lease,
                    source,
                    created_by,
                    timings_ms,
                    t0,
                )
            except repo.KeyLost:
                continue
            except BaseException:
                await anyio.to_thread.run_sync(self._release, idempotency_key, req_hash, lease)
                raise
        raise Problem(
            409,
            "a request with this Idempotency-Key is still being processed",
            code="idempotency_key_in_use",
            headers={"Retry-After": "2"},
        )

    def _release(self, key: str, req_hash: str, lease: datetime | None) -> None:
        with self.store.db.write() as s:
            repo.release_key(s, key, req_hash, lease)

    async def _claim(self, key: str, req_hash: str) -> tuple[dict[str, Any] | None, datetime | None]:
        """Own the key (``(None, lease)``) or return the stored body; waits while a first request runs.

        Races between processes are settled by the database: a unique key, so
        the loser of two inserts gets IntegrityError and looks again.
        """
        lease = timedelta(seconds=self.settings.server.idempotency_wait_s)
        deadline = time.monotonic() + self.settings.server.idempotency_wait_s
        delay = 0.02

        def attempt() -> repo.Claim:
            with self.store.db.write() as s:
                return repo.claim_key(s, key, req_hash, lease=lease)

        while True:
            taken: asyncio.Future[repo.Claim] = asyncio.ensure_future(anyio.to_thread.run_sync(attempt))
            try:
                claim = await asyncio.shield(taken)
            except asyncio.CancelledError:
                # Cancelling abandons the wait, not the thread: a key it takes after this would
                # be held for the whole lease, and every retry would wait that long.
                taken.add_done_callback(functools.partial(self._hand_back, key, req_hash))
                raise
            except IntegrityError:  # another server inserted the same key first: look again
                claim = repo.Claim("busy")
            except OperationalError as exc:
                raise Problem(
                    503, f"the database is busy ({exc.orig}); retry", code="storage_busy", headers={"Retry-After": "1"}
                ) from exc
            if claim.kind == "new":
                return None, claim.lease
            if claim.kind == "conflict":
                raise Problem(
                    409,
                    "this Idempotency-Key was already used with a different request body",
                    code="idempotency_key_reused",
                )
            if claim.kind == "replay":
                assert claim.inspection_id is not None
                body = await anyio.to_thread.run_sync(self._stored_body, claim.inspection_id)
                if body is None:
                    raise Problem(500, "the stored response of this Idempotency-Key is missing", code="internal_error")
                return as_served(repo.compose(body, [])), None
            if time.monotonic() > deadline:
                raise Problem(
                    409,
                    "a request with this Idempotency-Key is still being processed",
                    code="idempotency_key_in_use",
                    headers={"Retry-After": "2"},
                )
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 1.6)

    def _hand_back(self, key: str, req_hash: str, taken: asyncio.Future[repo.Claim]) -> None:
        """Release a key that a claim took after its request was cancelled."""
        if taken.cancelled() or taken.exception() is not None or taken.result().kind != "new":
            return
        release = asyncio.ensure_future(anyio.to_thread.run_sync(self._release, key, req_hash, taken.result().lease))
        self._background.add(release)
        release.add_done_callback(self._background.discard)
        release.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _stored_body(self, inspection_id: str) -> dict[str, Any] | None:
        with self.store.db.read() as s:
            return repo.inspection_body(s, inspection_id)

    async def _run_and_store(
        self,
        frames: list[Frame],
        item: ItemInfo,
        item_json: dict[str, Any],
        images: list[bytes],
        digests: list[str],
        req_hash: str,
        idempotency_key: str | None,
        idempotency_lease: datetime | None,
        source: str,
        created_by: str | None,
        timings_ms: dict[str, float] | None,
        t0: float,
    ) -> dict[str, Any]:
        pipeline = self.slot.pipeline
        if pipeline is None:
            raise Problem(
                503,
                f"the station cannot inspect yet: {self.slot.error}",
                code="model_not_ready",
                headers={"Retry-After": "30"},
            )
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
        except QueueFull as exc:
            self.metrics.rejected.inc()
            raise Problem(503, str(exc), code="queue_full", headers={"Retry-After": str(exc.retry_after)}) from exc
        except ValueError as exc:
            raise Problem(422, f"the item cannot be inspected: {exc}", code="inspection_refused") from exc
        self.metrics.model_latency.observe(run_s)
        timings = dict(timings_ms or {})
        timings.update({k: round(float(v), 2) for k, v in inspection.timings_ms.items()})
        timings["queue"] = round(wait_s * 1000, 2)
        timings["pipeline"] = round(run_s * 1000, 2)
        timings["total"] = round((time.perf_counter() - t0) * 1000 + timings.get("decode", 0.0), 2)
        body = self._body(inspection, item_json, images, digests, source, pipeline, timings)

        stored_images = [
            repo.StoredImage(
                n=i,
                sha256=digests[i],
                media_type=sniff_media_type(images[i]),
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
                repo.save_inspection(
                    s,
                    body,
                    images=stored_images,
                    source=source,
                    request_hash=req_hash,
                    created_by=created_by,
                    idempotency_key=idempotency_key,
                    idempotency_lease=idempotency_lease,
                )
                add_event(s, "inspection.completed", served)

        try:
            if images_stored is not None:
                await images_stored  # on disk and synced before the row that names them commits
            await anyio.to_thread.run_sync(persist)
        except OperationalError as exc:
            raise Problem(
                503, f"the database is busy ({exc.orig}); retry", code="storage_busy", headers={"Retry-After": "1"}
            ) from exc
        self._notify()
        self.metrics.inspections.labels(body["grade"]["level"], body["disposition"]["path"], source).inc()
        return served

    def _put_images(self, images: list[bytes]) -> None:
        for data in images:
            self.store.images.put(data)

    def _body(
        self,
        inspection: Inspection,
        item_json: dict[str, Any],
        images: list[bytes],
        digests: list[str],
        source: str,
        pipeline: InspectionPipeline,
        timings: dict[str, float],
    ) -> dict[str, Any]:
        iid = inspection.id
        views = []
        for n, view in enumerate(inspection.views):
            f = view.frame
            views.append(
                {
                    "n": n,
                    "camera_id": f.camera_id,
                    "captured_at": _iso(f.captured_at),
                    "width": f.size[0],
                    "height": f.size[1],
                    "image": {
                        "sha256": digests[n],
                        "media_type": sniff_media_type(images[n]),
                        "size_bytes": len(images[n]),
                    },
                    "image_url": f"/v1/inspections/{iid}/images/{n}",
                    "annotated_url": f"/v1/inspections/{iid}/images/{n}?annotated=1",
                    "detections": view.detections.to_records(),
                }
            )
        return {
            "id": iid,
            "created_at": _iso(inspection.created_at),
            "station_id": inspection.station_id,
            "source": source,
            "item": dict(inspection.item) if inspection.item else item_json,
            "views": views,
            "grade": inspection.grade.to_dict(),
            "disposition": inspection.disposition.to_dict(),
            "versions": {
                "model": inspection.model_version or pipeline.model_version,
                "policy": inspection.disposition.policy_version or pipeline.policy_version,
                "rubric": inspection.grade.rubric_version or pipeline.rubric_version,
            },
            "timings_ms": timings,
        }

    # -------------------------------------------------------------- read

    async def get(self, inspection_id: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            with self.store.db.read() as s:
                found = repo.get_inspection(s, inspection_id)
            return as_served(found) if found is not None else None

        return await anyio.to_thread.run_sync(read)

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

        try:
            items, next_cursor = await anyio.to_thread.run_sync(read)
        except ValueError as exc:
            raise Problem(422, str(exc), code="bad_cursor") from exc
        return {"items": [as_served(b) for b in items], "next_cursor": next_cursor}

    async def image(self, inspection_id: str, n: int, *, annotated: bool = False) -> tuple[bytes, str]:
        """The original bytes of view ``n`` and their media type, or a JPEG with the boxes drawn."""

        def read() -> tuple[bytes, str]:
            with self.store.db.read() as s:
                row = repo.get_image(s, inspection_id, n)
                body = repo.inspection_body(s, inspection_id) if annotated and row is not None else None
            if row is None:
                raise Problem(404, f"inspection {inspection_id} has no image {n}", code="not_found")
            try:
                data = self.store.images.get(row.sha256)
            except FileNotFoundError as exc:
                raise Problem(500, "the image file is missing from the store", code="image_missing") from exc
            if not annotated:
                return data, row.media_type
            from inspector.draw import draw_detections
            from inspector.imageio import decode_image

            image = decode_image(data, max_pixels=self.settings.server.max_pixels)
            records = body["views"][n]["detections"] if body is not None else []
            return encode_jpeg(draw_detections(image, detections_of(records)), quality=90), "image/jpeg"

        return await anyio.to_thread.run_sync(read)

    # ------------------------------------------------------------ decide

    async def decide(
        self,
        inspection_id: str,
        body: dict[str, Any],
        actor: str,
        *,
        key_id: str | None = None,
        source: str = "api",
    ) -> dict[str, Any]:
        """Record a final decision (accept or override); returns the inspection with every decision.

        The recommendation is never changed: each decision is a new row, and the
        newest one is the outcome in force (``final``).
        """
        try:
            decision = DecisionIn.model_validate(body)
        except ValidationError as exc:
            errors = validation_errors(exc.errors())
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
            raise Problem(422, detail, code="invalid_decision", errors=errors) from exc

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
                    source=source,
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

        try:
            out = await anyio.to_thread.run_sync(write)
        except OperationalError as exc:
            raise Problem(
                503, f"the database is busy ({exc.orig}); retry", code="storage_busy", headers={"Retry-After": "1"}
            ) from exc
        if out is None:
            raise Problem(404, f"no inspection with id {inspection_id}", code="not_found")
        self._notify()
        self.metrics.decisions.labels(decision.action).inc()
        return out
