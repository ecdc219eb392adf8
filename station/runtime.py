"""The running station: camera threads, the trigger loop, the live view, submissions.

One reader thread per camera keeps the newest frame (a slow consumer never
builds a queue of stale frames); one station thread feeds the trigger, encodes
the live view and hands captures to the inspection service on the API's event
loop without waiting for the result, so the live view never stalls behind the
model. Every change the page cares about bumps ``version`` and wakes the
page's long poll.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspector.draw import draw_detections
from inspector.items import ItemInfo
from inspector.labelmap import default_labelmap
from inspector.types import Detections, Frame, Image
from station.labels import CodeRead, LabelReader, item_codes
from station.shiftcheck import ShiftCheck, ShiftCheckConfig, check_bench
from station.sources import FrameSource
from station.trigger import Capture, Trigger, TriggerConfig, TriggerState

log = logging.getLogger(__name__)

Submit = Callable[[list[Frame], ItemInfo, str], Awaitable[dict[str, Any]]]
"""Creates one inspection from the views of one item: (frames, item, idempotency key) -> inspection JSON."""


@dataclass(slots=True)
class _Camera:
    source: FrameSource
    spec: str
    latest: Frame | None = None
    seq: int = 0
    fed_seq: int = 0
    latest_at: float = 0.0
    fps: float = 0.0
    times: deque[float] = field(default_factory=lambda: deque(maxlen=31))  # arrival of the last frames
    state: str = "starting"
    error: str | None = None
    thread: threading.Thread | None = None


@dataclass(slots=True)
class InspectionRecord:
    """One submitted capture and its timeline (wall-clock seconds), for the page and the latency figures."""

    capture_id: str
    manual: bool
    still_since: float
    captured_at: float
    submitted_at: float
    rest_at: float | None = None
    done_at: float | None = None
    inspection_id: str | None = None
    error: str | None = None
    rma: str | None = None
    lpn: str | None = None
    item_source: str | None = None
    grade: str | None = None
    disposition: str | None = None
    sharpness: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        latency = None
        if self.done_at is not None:
            start = self.rest_at if self.rest_at is not None else self.still_since
            latency = round((self.done_at - start) * 1000.0, 1)
        return {
            "capture_id": self.capture_id,
            "inspection_id": self.inspection_id,
            "manual": self.manual,
            "rest_at": self.rest_at,
            "still_since": self.still_since,
            "captured_at": self.captured_at,
            "submitted_at": self.submitted_at,
            "done_at": self.done_at,
            "server_latency_ms": latency,
            "error": self.error,
            "rma": self.rma,
            "lpn": self.lpn,
            "item_source": self.item_source,
            "grade": self.grade,
            "disposition": self.disposition,
            "sharpness": {k: round(v, 1) for k, v in self.sharpness.items()},
        }


def detections_from_json(view: dict[str, Any]) -> Detections:
    """Rebuild one view's detections from the inspection JSON (for drawing on the live view)."""
    names = default_labelmap().names
    rows = view.get("detections") or []
    if isinstance(rows, dict):  # columnar form
        xyxy = np.asarray(rows.get("xyxy", []), dtype=np.float32).reshape(-1, 4)
        conf = np.asarray(rows.get("confidence", []), dtype=np.float32)
        if "class_name" in rows or "class_names" in rows:
            listed = rows.get("class_name") or rows.get("class_names") or []
            cls = np.asarray([names.index(n) if n in names else 0 for n in listed], dtype=np.int64)
        else:
            cls = np.asarray(rows.get("class_id", []), dtype=np.int64)
        return Detections(xyxy=xyxy, confidence=conf, class_id=cls, class_names=names)
    kept = [r for r in rows if isinstance(r, dict) and "xyxy" in r]
    if not kept:
        return Detections.empty(names)
    cls_ids = []
    for r in kept:
        name = r.get("class_name")
        cls_ids.append(names.index(name) if name in names else int(r.get("class_id", 0)) % len(names))
    return Detections(
        xyxy=np.asarray([r["xyxy"] for r in kept], dtype=np.float32),
        confidence=np.asarray([float(r.get("confidence", 0.0)) for r in kept], dtype=np.float32),
        class_id=np.asarray(cls_ids, dtype=np.int64),
        class_names=names,
    )


def _summary(result: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    grade = result.get("grade") or {}
    disp = result.get("disposition") or {}
    level = grade.get("level") if isinstance(grade, dict) else None
    path = disp.get("path") if isinstance(disp, dict) else None
    return result.get("id"), level, path


class StationRuntime:
    """Cameras, trigger and submissions of one bench, driven by threads.

    ``submit`` runs on ``loop`` (the API's event loop); without a submit function
    the station still shows the live view and says that inspections are off.
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        *,
        specs: Sequence[str] | None = None,
        submit: Submit | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        fps: float = 20.0,
        trigger: TriggerConfig | None = None,
        shift_config: ShiftCheckConfig | None = None,
        reference_dir: Path | None = None,
        label_reader: LabelReader | None = None,
        model_ready: Callable[[], bool | None] | None = None,
        station_id: str = "bench-1",
        jpeg_quality: int = 80,
        history: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not sources:
            raise ValueError("the station needs at least one camera source")
        ids = [s.camera_id for s in sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"camera ids must be unique, got {ids}")
        spec_list = (
            list(specs) if specs is not None else [str(getattr(s, "description", type(s).__name__)) for s in sources]
        )
        self._cams = [_Camera(s, spec) for s, spec in zip(sources, spec_list, strict=True)]
        self._submit = submit
        self._loop = loop
        self.fps = fps
        self.trigger = Trigger(trigger)
        self._shift_config = shift_config or ShiftCheckConfig()
        self.reference_dir = reference_dir
        self.labels = label_reader
        self._model_ready = model_ready
        self.station_id = station_id
        self._jpeg_quality = jpeg_quality
        self._clock = clock

        self._lock = threading.RLock()
        self._frame_event = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.version = 0
        self._waiters: set[asyncio.Future[None]] = set()

        self._jpeg: bytes | None = None
        self.jpeg_seq = 0
        self._overlay: dict[str, Detections] = {}
        self._capture_images: dict[int, Image] = {}
        self._last_capture_id: str | None = None
        self._manual = threading.Event()
        self._pending_item: dict[str, str | None] = {"rma": None, "lpn": None}
        self.last_labels: list[CodeRead] = []
        self.records: deque[InspectionRecord] = deque(maxlen=history)
        self.in_flight = 0
        self.last_error: str | None = None
        self.shift: dict[str, ShiftCheck] = {}
        self.shift_checked_at: float | None = None
        self._shift_request = threading.Event()
        self._shift_request.set()  # once at start
        self._store_reference = threading.Event()
        self._trigger_state = self.trigger.state
        self.started_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is not None:
            self._loop = loop
        self.started_at = self._clock()
        for cam in self._cams:
            t = threading.Thread(
                target=self._camera_loop, args=(cam,), name=f"camera-{cam.source.camera_id}", daemon=True
            )
            cam.thread = t
            self._threads.append(t)
        self._threads.append(threading.Thread(target=self._station_loop, name="station", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._frame_event.set()
        for t in self._threads:
            t.join(timeout)
        for cam in self._cams:
            try:
                cam.source.close()
            except Exception:  # closing must not stop the others closing
                log.exception("closing camera %s failed", cam.source.camera_id)
        self._changed()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ page signals

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def release_waiters(self) -> None:
        """Wake every long poll now (the server is stopping); safe from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake)

    async def wait_for_change(self, after: int, timeout: float) -> None:
        """Return once ``version`` moved past ``after``, or after ``timeout`` seconds."""
        if self.version != after or self.stopped:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)

    # ------------------------------------------------------------------ cameras

    def _camera_loop(self, cam: _Camera) -> None:
        src = cam.source
        period = 1.0 / self.fps
        next_at = time.monotonic()
        opened = False
        while not self._stop.is_set():
            if not opened:
                try:
                    src.open()
                    opened = True
                except Exception as exc:  # a missing file or unusable device: say so, retry later
                    self._set_camera_state(cam, "failed", str(exc))
                    self._stop.wait(5.0)
                    continue
            if not src.live:  # files, folders and the synthetic bench play at the configured rate
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                # a late frame does not make the next one early: frames start at least a period apart
                next_at = max(next_at, time.monotonic()) + period
            frame = src.read()
            if frame is None:
                self._set_camera_state(cam, src.state, src.last_error)
                self._stop.wait(0.05 if src.live else 0.5)
                continue
            now = time.monotonic()
            with self._lock:
                cam.latest = frame
                cam.seq += 1
                cam.latest_at = self._clock()
                cam.times.append(now)
                if len(cam.times) > 1 and cam.times[-1] > cam.times[0]:
                    cam.fps = (len(cam.times) - 1) / (cam.times[-1] - cam.times[0])
            self._set_camera_state(cam, src.state, src.last_error)
            self._frame_event.set()

    def _set_camera_state(self, cam: _Camera, state: str, error: str | None) -> None:
        if cam.state != state or cam.error != error:
            cam.state, cam.error = state, error
            self._changed()

    @property
    def camera_ready(self) -> bool:
        return all(c.state == "ok" for c in self._cams)

    # ------------------------------------------------------------------ the station loop

    def _station_loop(self) -> None:
        while not self._stop.is_set():
            self._frame_event.wait(0.5)
            self._frame_event.clear()
            if self._stop.is_set():
                break
            try:
                self._tick()
            except Exception:  # one bad frame must not end the station
                log.exception("station tick failed")
                self.last_error = "internal error in the station loop (see the log)"
                self._changed()

    def _newest(self) -> tuple[list[Frame], bool]:
        """The newest frame of every working camera, and whether any of them is new."""
        frames: list[Frame] = []
        fresh = False
        lost: list[str] = []
        now = self._clock()
        with self._lock:
            for cam in self._cams:
                if cam.latest is None or cam.state != "ok" or now - cam.latest_at > 2.0:
                    lost.append(cam.source.camera_id)
                    continue
                frames.append(cam.latest)
                if cam.seq != cam.fed_seq:
                    fresh = True
                    cam.fed_seq = cam.seq
        if lost:  # a camera that dropped out must not lend its last frame to a capture
            self.trigger.forget(lost)
        return frames, fresh

    def _tick(self) -> None:
        frames, fresh = self._newest()
        if not frames:
            self._encode_live([])
            return
        now = self._clock()
        if self._shift_request.is_set() and self.trigger.state == TriggerState.EMPTY:
            self._shift_request.clear()
            self._run_shift_check(frames, store_missing=True)
        if self._store_reference.is_set():
            self._store_reference.clear()
            self._save_references(frames)
            for f in frames:
                self.trigger.set_reference(f.camera_id, f.image)
            self._run_shift_check(frames, store_missing=False)
        capture: Capture | None = None
        if self._manual.is_set():
            self._manual.clear()
            capture = self.trigger.capture_now(now)
        elif fresh:
            capture = self.trigger.feed(frames, now)
        if self.trigger.state != self._trigger_state:
            if self.trigger.state in (TriggerState.EMPTY, TriggerState.MOTION):
                self._overlay = {}
            self._trigger_state = self.trigger.state
            self._changed()
        if capture is not None:
            self._handle_capture(capture)
        if fresh:
            self._encode_live(frames)

    # ------------------------------------------------------------------ live view

    def _compose(self, frames: list[Frame]) -> Image:
        images: list[Image] = []
        for f in frames:
            img = f.image
            overlay = self._overlay.get(f.camera_id)
            if overlay is not None and len(overlay):
                img = draw_detections(img, overlay)
            images.append(img)
        if len(images) == 1:
            out = images[0].copy() if images[0] is frames[0].image else images[0]
        else:
            h = min(i.shape[0] for i in images)
            scaled = [cv2.resize(i, (round(i.shape[1] * h / i.shape[0]), h)) if i.shape[0] != h else i for i in images]
            out = np.hstack(scaled)
        label = f"{self.trigger.state.value}"
        if self.in_flight:
            label += "  inspecting..."
        cv2.putText(out, label, (10, out.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (10, out.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        return np.ascontiguousarray(out)

    def _encode_live(self, frames: list[Frame]) -> None:
        if frames:
            image = self._compose(frames)
        else:
            image = np.full((240, 320, 3), 40, dtype=np.uint8)
            cv2.putText(image, "no camera", (90, 125), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._jpeg_quality])
        if ok:
            with self._lock:
                self._jpeg = buf.tobytes()
                self.jpeg_seq += 1

    def latest_jpeg(self) -> tuple[int, bytes | None]:
        with self._lock:
            return self.jpeg_seq, self._jpeg

    def capture_jpeg(self, n: int) -> bytes | None:
        """View ``n`` of the last capture, as JPEG (the page shows it until the API has the image)."""
        with self._lock:
            img = self._capture_images.get(n)
        if img is None:
            return None
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return buf.tobytes() if ok else None

    # ------------------------------------------------------------------ shift check and references

    def _reference_path(self, camera_id: str) -> Path | None:
        if self.reference_dir is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in camera_id)
        return self.reference_dir / f"reference-{safe}.png"

    def _save_references(self, frames: list[Frame]) -> None:
        for f in frames:
            path = self._reference_path(f.camera_id)
            if path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.png")
            if cv2.imwrite(str(tmp), f.image):
                tmp.replace(path)

    def _run_shift_check(self, frames: list[Frame], *, store_missing: bool) -> None:
        results: dict[str, ShiftCheck] = {}
        for f in frames:
            path = self._reference_path(f.camera_id)
            reference: Image | None = None
            if path is not None and path.is_file():
                loaded = cv2.imread(str(path), cv2.IMREAD_COLOR)
                reference = None if loaded is None else np.asarray(loaded, dtype=np.uint8)
            results[f.camera_id] = check_bench(f.image, reference, f.camera_id, self._shift_config)
            if reference is None and store_missing and path is not None:
                self._save_references([f])
        self.shift = results
        self.shift_checked_at = self._clock()
        self._changed()

    def request_shift_check(self) -> None:
        self._shift_request.set()
        self._frame_event.set()

    def store_reference(self) -> bool:
        """Take the current view as the empty-bench reference; refused while an item is on the bench."""
        if self.trigger.state != TriggerState.EMPTY:
            return False
        self._store_reference.set()
        self._frame_event.set()
        return True

    # ------------------------------------------------------------------ captures and submissions

    def request_capture(self) -> None:
        """The manual capture key: inspect what is on the bench now."""
        self._manual.set()
        self._frame_event.set()

    def set_item(self, rma: str | None, lpn: str | None) -> None:
        """RMA/LPN typed or scanned at the page, used for the next capture."""
        with self._lock:
            self._pending_item = {"rma": (rma or "").strip() or None, "lpn": (lpn or "").strip() or None}
        self._changed()

    def _item_for(self, capture: Capture) -> tuple[ItemInfo, str | None]:
        rma_read = lpn_read = None
        if self.labels is not None:
            reads: list[CodeRead] = []
            for f in capture.frames:
                reads.extend(self.labels.read(f.image))
            self.last_labels = reads
            rma_read, lpn_read = item_codes(reads)
        with self._lock:
            typed = dict(self._pending_item)
            self._pending_item = {"rma": None, "lpn": None}
        rma = typed["rma"] or rma_read
        lpn = typed["lpn"] or lpn_read
        source = "typed" if (typed["rma"] or typed["lpn"]) else ("label" if (rma_read or lpn_read) else None)
        return ItemInfo(rma=rma, lpn=lpn), source

    def _handle_capture(self, capture: Capture) -> None:
        item, item_source = self._item_for(capture)
        rest_at = None
        for cam in self._cams:
            value = getattr(cam.source, "last_rest_at", None)
            if isinstance(value, float) and (rest_at is None or value > rest_at):
                rest_at = value
        record = InspectionRecord(
            capture_id=f"{self.station_id}-{uuid.uuid4().hex[:16]}",
            manual=capture.manual,
            still_since=capture.still_since,
            captured_at=capture.captured_at,
            submitted_at=self._clock(),
            rest_at=None if capture.manual else rest_at,
            rma=item.rma,
            lpn=item.lpn,
            item_source=item_source,
            sharpness=dict(capture.sharpness),
        )
        with self._lock:
            self._capture_images = {i: f.image for i, f in enumerate(capture.frames)}
            self._last_capture_id = record.capture_id
            self.records.append(record)
        if self._submit is None or self._loop is None:
            record.error = "inspections are off: no inspection service"
            self.last_error = record.error
            self._changed()
            return
        with self._lock:
            self.in_flight += 1
        self._changed()
        coro = self._submit(list(capture.frames), item, record.capture_id)
        try:
            fut = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop)
        except RuntimeError as exc:  # the loop is gone (shutting down)
            with self._lock:
                self.in_flight -= 1
            record.error = f"could not submit: {exc}"
            self._changed()
            return
        fut.add_done_callback(lambda f: self._on_result(record, f))

    def _on_result(self, record: InspectionRecord, fut: concurrent.futures.Future[dict[str, Any]]) -> None:
        record.done_at = self._clock()
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
        try:
            result = fut.result()
        except Exception as exc:
            detail = getattr(exc, "detail", None)
            record.error = str(detail if detail is not None else exc) or type(exc).__name__
            self.last_error = f"inspection failed: {record.error}"
            log.warning("inspection of %s failed: %s", record.capture_id, record.error)
        else:
            record.inspection_id, record.grade, record.disposition = _summary(result)
            self.last_error = None
            views = result.get("views") or []
            overlay: dict[str, Detections] = {}
            for i, view in enumerate(views):
                if not isinstance(view, dict):
                    continue
                camera_id = view.get("camera_id") or (self._cams[i].source.camera_id if i < len(self._cams) else None)
                if camera_id:
                    try:
                        overlay[str(camera_id)] = detections_from_json(view)
                    except Exception:  # drawing is a nicety; a format surprise must not hide the result
                        log.exception("cannot draw the detections of view %d", i)
            if self.trigger.state == TriggerState.CAPTURED and record.capture_id == self._last_capture_id:
                self._overlay = overlay
        self._changed()

    # ------------------------------------------------------------------ status

    def model_ready(self) -> bool | None:
        if self._model_ready is None:
            return None
        try:
            return self._model_ready()
        except Exception:
            return False

    def status(self) -> dict[str, Any]:
        with self._lock:
            cams = [
                {
                    "camera_id": c.source.camera_id,
                    "source": c.spec,
                    "kind": type(c.source).__name__,
                    "state": c.state,
                    "healthy": c.state == "ok",
                    "error": c.error,
                    "fps": round(c.fps, 1),
                    "frames": c.seq,
                    "retry_in_s": round(float(getattr(c.source, "retry_in_s", 0.0)), 1),
                }
                for c in self._cams
            ]
            records = list(self.records)
            pending = dict(self._pending_item)
        warnings = [dict(w.to_dict(), camera_id=cid) for cid, chk in self.shift.items() for w in chk.warnings]
        last_done = next((r for r in reversed(records) if r.inspection_id is not None), None)
        return {
            "version": self.version,
            "station_id": self.station_id,
            "now": self._clock(),
            "cameras": cams,
            "camera_ready": all(c["healthy"] for c in cams),
            "model_ready": self.model_ready(),
            "inspections_enabled": self._submit is not None,
            "trigger": {"state": self.trigger.state.value, "captures": self.trigger.captures},
            "busy": self.in_flight > 0,
            "item": pending,
            "labels": {
                "backend": self.labels.backend if self.labels else None,
                "last": [r.to_dict() for r in self.last_labels],
            },
            "shift_check": {
                "done": self.shift_checked_at is not None,
                "checked_at": self.shift_checked_at,
                "ok": not warnings,
                "warnings": warnings,
                "cameras": [chk.to_dict() for chk in self.shift.values()],
            },
            "last_inspection": last_done.to_dict() if last_done else None,
            "last_capture": records[-1].to_dict() if records else None,
            "last_error": self.last_error,
            "recent": [r.to_dict() for r in records[-50:]],
        }


async def _as_coroutine(awaitable: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    return await awaitable
