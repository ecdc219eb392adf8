"""Captures without threads: the item each capture is for, what is recorded, and which result is drawn."""

from __future__ import annotations

import concurrent.futures

import numpy as np

from inspector.errors import Unavailable
from inspector.items import ItemInfo
from inspector.types import Detections, Frame, Inspection
from station.capture import Captures, InspectionRecord
from station.trigger import Capture
from tests.station.standin import inspection_of


def _frames() -> list[Frame]:
    return [Frame(np.full((48, 64, 3), 90, np.uint8), camera_id="cam0")]


def _captures(shown: list[dict[str, Detections]], changes: list[int]) -> Captures:
    return Captures(submit=None, show=shown.append, changed=lambda: changes.append(1), clock=lambda: 7.0)


def _answered(result: Inspection | Exception) -> concurrent.futures.Future[Inspection]:
    fut: concurrent.futures.Future[Inspection] = concurrent.futures.Future()
    if isinstance(result, Exception):
        fut.set_exception(result)
    else:
        fut.set_result(result)
    return fut


def test_without_a_service_a_capture_is_recorded_with_the_reason_and_the_typed_item_used_once() -> None:
    shown: list[dict[str, Detections]] = []
    changes: list[int] = []
    captures = _captures(shown, changes)
    captures.set_item(" RMA-1 ", "")
    captures.handle(Capture(frames=tuple(_frames()), still_since=1.0, captured_at=2.0), rest_at=0.5)
    captures.handle(Capture(frames=tuple(_frames()), still_since=3.0, captured_at=4.0, manual=True), rest_at=0.5)
    first, second = captures.records
    assert (first.rma, first.lpn, first.item_source, first.rest_at) == ("RMA-1", None, "typed", 0.5)
    assert (second.rma, second.item_source, second.rest_at) == (None, None, None)  # manual: no rest time
    assert first.capture_id.startswith("bench-1-") and first.capture_id != second.capture_id
    assert captures.last_error == second.error == "inspections are off: no inspection service"
    assert captures.in_flight == 0 and not shown and len(changes) == 3
    jpeg = captures.jpeg(0)
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8" and captures.jpeg(1) is None
    status = captures.status()
    assert status["inspections_enabled"] is False and status["last_capture"]["capture_id"] == second.capture_id
    assert status["last_inspection"] is None and len(status["recent"]) == 2


def test_only_the_newest_captures_result_is_drawn_and_a_refusal_is_reported() -> None:
    shown: list[dict[str, Detections]] = []
    captures = _captures(shown, [])
    older = InspectionRecord("cap-1", manual=False, still_since=0.0, captured_at=0.0, submitted_at=0.0)
    newer = InspectionRecord("cap-2", manual=False, still_since=0.0, captured_at=0.0, submitted_at=0.0)
    captures.records.extend([older, newer])
    captures.last_capture_id = newer.capture_id
    frames = _frames()
    late = inspection_of(frames, ItemInfo(rma="RMA-1"))
    captures.on_result(older, _answered(late))
    assert older.inspection_id == late.id and older.done_at == 7.0 and not shown  # an older item: not drawn
    captures.on_result(newer, _answered(Unavailable("the model is not loaded", code="model_not_ready")))
    assert newer.error == "the model is not loaded" and newer.inspection_id is None
    assert captures.last_error == "inspection failed: the model is not loaded" and not shown
    newest = InspectionRecord("cap-3", manual=False, still_since=0.0, captured_at=0.0, submitted_at=0.0)
    captures.last_capture_id = newest.capture_id
    inspection = inspection_of(frames, ItemInfo(rma="RMA-3"))
    captures.on_result(newest, _answered(inspection))
    assert shown == [{"cam0": inspection.views[0].detections}] and captures.status()["last_error"] is None
    assert captures.in_flight == 0  # answers never count below zero
