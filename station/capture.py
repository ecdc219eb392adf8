"""The captures the trigger takes: which item it is, handing it to the inspection service, and what came back.

The RMA/LPN typed at the page wins over the one read from the item's label, and
is used for one capture only. An RMA the WMS announced with several lines (and no
LPN to pick one) holds its capture until the operator picks the line, goes on
without one, or the next item is captured. A capture is submitted on the API's event loop
without waiting for the result, so the station thread never stalls behind the
model; the result arrives on that loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import cv2

from inspector.errors import InspectorError
from inspector.items import ItemInfo
from inspector.types import Detections, Frame, Image, Inspection
from station.labels import CodeRead, LabelReader, item_codes
from station.trigger import Capture

log = logging.getLogger(__name__)

Submit = Callable[[list[Frame], ItemInfo, str], Awaitable[Inspection]]
"""Creates one inspection from the views of one item: (frames, item, idempotency key) -> the inspection.

It raises :class:`~inspector.errors.InspectorError` when the item is not inspected (no model, a full queue).
"""

LinesOf = Callable[[str], int]
"""How many lines the expected return of an RMA has (0 when none is expected); a quick read of the store."""


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
    line: int | None = None
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
            "line": self.line,
            "item_source": self.item_source,
            "grade": self.grade,
            "disposition": self.disposition,
            "sharpness": {k: round(v, 1) for k, v in self.sharpness.items()},
        }


class Captures:
    """Every capture of one bench, from the trigger to its inspection.

    ``submit`` runs on ``loop``; without either, captures are recorded with the
    reason inspections are off. ``show`` gets the detections of the newest
    capture's inspection (to draw them); ``changed`` is called on every change the page shows.
    ``lines_of`` tells how many lines an RMA's expected return has: with several, the capture
    waits for the operator's choice (:meth:`choose_line`).
    """

    def __init__(
        self,
        *,
        submit: Submit | None,
        loop: asyncio.AbstractEventLoop | None = None,
        label_reader: LabelReader | None = None,
        lines_of: LinesOf | None = None,
        station_id: str = "bench-1",
        history: int = 200,
        show: Callable[[dict[str, Detections]], None],
        changed: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._submit = submit
        self.loop = loop
        self.labels = label_reader
        self.lines_of = lines_of
        self.station_id = station_id
        self._show = show
        self._changed = changed
        self._clock = clock
        self._lock = threading.Lock()
        self._pending_item: _Typed = _Typed()
        self._held: _Held | None = None  # a capture waiting for the operator to pick its return line
        self._images: dict[int, Image] = {}
        self.last_capture_id: str | None = None
        self.last_labels: list[CodeRead] = []
        self.records: deque[InspectionRecord] = deque(maxlen=history)
        self.in_flight = 0
        self.last_error: str | None = None

    def set_item(self, rma: str | None, lpn: str | None, line: int | None = None) -> None:
        """RMA/LPN typed or scanned at the page (and the return line, if known), used for the next capture."""
        with self._lock:
            self._pending_item = _Typed((rma or "").strip() or None, (lpn or "").strip() or None, line)
        self._changed()

    def choose_line(self, line: int | None) -> str:
        """The operator picked the return line (None: go on without one).

        A capture waiting for it is submitted now ("capture"); otherwise the line goes with the
        typed RMA to the next capture ("next"); with neither, there is nothing to choose ("none").
        """
        with self._lock:
            held, self._held = self._held, None
            typed = held is None and self._pending_item.rma is not None
            if typed:
                self._pending_item = replace(self._pending_item, line=line)
        if held is not None:
            held.record.line, held.record.submitted_at = line, self._clock()
            self._send(held.record, held.frames, replace(held.item, line=line))
            return "capture"
        self._changed()
        return "next" if typed else "none"

    def _item_for(self, capture: Capture) -> tuple[ItemInfo, str | None]:
        rma_read = lpn_read = None
        if self.labels is not None:
            reads: list[CodeRead] = []
            for f in capture.frames:
                reads.extend(self.labels.read(f.image))
            self.last_labels = reads
            rma_read, lpn_read = item_codes(reads)
        with self._lock:
            typed, self._pending_item = self._pending_item, _Typed()
        rma = typed.rma or rma_read
        lpn = typed.lpn or lpn_read
        source = "typed" if (typed.rma or typed.lpn) else ("label" if (rma_read or lpn_read) else None)
        return ItemInfo(rma=rma, lpn=lpn, line=typed.line if typed.rma == rma else None), source

    def _needs_line(self, item: ItemInfo) -> int:
        """The number of lines to choose from when ``item``'s RMA has several and nothing picks one, else 0."""
        if self.lines_of is None or item.rma is None or item.lpn is not None or item.line is not None:
            return 0
        try:
            lines = self.lines_of(item.rma)
        except Exception:  # the store cannot tell: the service says what it finds
            log.exception("could not read the expected return of %s", item.rma)
            return 0
        return lines if lines > 1 else 0

    def handle(self, capture: Capture, rest_at: float | None) -> None:
        """Record ``capture`` and submit it; ``rest_at`` is when the item came to rest, if a source knows."""
        with self._lock:
            earlier, self._held = self._held, None
        if earlier is not None:  # the next item is on the bench: the waiting one goes on without a line
            earlier.record.submitted_at = self._clock()
            self._send(earlier.record, earlier.frames, earlier.item)
        item, item_source = self._item_for(capture)
        record = InspectionRecord(
            capture_id=f"{self.station_id}-{uuid.uuid4().hex[:16]}",
            manual=capture.manual,
            still_since=capture.still_since,
            captured_at=capture.captured_at,
            submitted_at=self._clock(),
            rest_at=None if capture.manual else rest_at,
            rma=item.rma,
            lpn=item.lpn,
            line=item.line,
            item_source=item_source,
            sharpness=dict(capture.sharpness),
        )
        with self._lock:
            self._images = {i: f.image for i, f in enumerate(capture.frames)}
            self.last_capture_id = record.capture_id
            self.records.append(record)
        lines = self._needs_line(item) if self._submit is not None else 0
        if lines:
            with self._lock:
                self._held = _Held(record, list(capture.frames), item, lines)
            self._changed()
            return
        self._send(record, list(capture.frames), item)

    def _send(self, record: InspectionRecord, frames: list[Frame], item: ItemInfo) -> None:
        """Hand one capture to the inspection service, on its loop."""
        if self._submit is None or self.loop is None:
            record.error = "inspections are off: no inspection service"
            self.last_error = record.error
            self._changed()
            return
        with self._lock:
            self.in_flight += 1
        self._changed()
        coro = self._submit(frames, item, record.capture_id)
        try:
            fut = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop)
        except RuntimeError as exc:  # the loop is gone (shutting down)
            with self._lock:
                self.in_flight -= 1
            record.error = f"could not submit: {exc}"
            self._changed()
            return
        fut.add_done_callback(lambda f: self.on_result(record, f))

    def on_result(self, record: InspectionRecord, fut: concurrent.futures.Future[Inspection]) -> None:
        """The service answered ``record``'s capture: its inspection, or why there is none."""
        record.done_at = self._clock()
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
        try:
            inspection = fut.result()
        except InspectorError as exc:  # the service refused or could not inspect: the operator is told why
            record.error = str(exc)
            self.last_error = f"inspection failed: {record.error}"
            log.warning("inspection of %s failed: %s", record.capture_id, record.error)
        except Exception as exc:
            record.error = str(exc) or type(exc).__name__
            self.last_error = f"inspection failed: {record.error}"
            log.exception("inspection of %s failed", record.capture_id)
        else:
            record.inspection_id = inspection.id
            record.grade = inspection.grade.level.value
            record.disposition = inspection.disposition.path.value
            self.last_error = None
            if record.capture_id == self.last_capture_id:
                self._show({view.frame.camera_id: view.detections for view in inspection.views})
        self._changed()

    def jpeg(self, n: int) -> bytes | None:
        """View ``n`` of the last capture, as JPEG (the page shows it until the API has the image)."""
        with self._lock:
            img = self._images.get(n)
        if img is None:
            return None
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return buf.tobytes() if ok else None

    def status(self) -> dict[str, Any]:
        with self._lock:
            records = list(self.records)
            pending = self._pending_item
            held = self._held
        last_done = next((r for r in reversed(records) if r.inspection_id is not None), None)
        return {
            "inspections_enabled": self._submit is not None,
            "busy": self.in_flight > 0,
            "item": {"rma": pending.rma, "lpn": pending.lpn, "line": pending.line},
            "awaiting_line": (
                {"capture_id": held.record.capture_id, "rma": held.item.rma, "lines": held.lines} if held else None
            ),
            "labels": {
                "backend": self.labels.backend if self.labels else None,
                "last": [r.to_dict() for r in self.last_labels],
            },
            "last_inspection": last_done.to_dict() if last_done else None,
            "last_capture": records[-1].to_dict() if records else None,
            "last_error": self.last_error,
            "recent": [r.to_dict() for r in records[-50:]],
        }


@dataclass(frozen=True, slots=True)
class _Typed:
    """What the operator typed or scanned for the next item."""

    rma: str | None = None
    lpn: str | None = None
    line: int | None = None


@dataclass(slots=True)
class _Held:
    """A capture whose RMA has several expected lines, waiting for the operator to pick one."""

    record: InspectionRecord
    frames: list[Frame]
    item: ItemInfo
    lines: int


async def _as_coroutine(awaitable: Awaitable[Inspection]) -> Inspection:
    return await awaitable
