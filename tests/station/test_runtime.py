"""The running station with threads and an event loop, against a recording inspection service."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspector.config import TriggerConfig
from inspector.items import ItemInfo
from inspector.types import Frame, Inspection
from station.capture import InspectionRecord
from station.labels import LabelReader
from station.runtime import StationRuntime
from station.sources.camera import OpenCVSource
from station.sources.synthetic import BenchSchedule, SyntheticBenchSource
from station.trigger import TriggerState
from tests.station.standin import FakeInspections, FlakyCapture, StandinBench, inspection_of, rma_for

FPS = 30.0
SCHEDULE = BenchSchedule(empty_s=0.4, enter_s=0.2, still_s=0.7, leave_s=0.2)


def _synthetic(seed: int = 0) -> SyntheticBenchSource:
    return SyntheticBenchSource("cam0", seed=seed, fps=FPS, schedule=SCHEDULE, bench=StandinBench(seed, labels=True))


def _runtime(service: FakeInspections | None, tmp_path: Path, sources: list[Any] | None = None) -> StationRuntime:
    async def submit(frames: list[Frame], item: ItemInfo, key: str) -> Inspection:
        assert service is not None
        return await service.create(frames, item, idempotency_key=key, source="station")

    return StationRuntime(
        sources or [_synthetic()],
        submit=submit if service is not None else None,
        fps=FPS,
        trigger=TriggerConfig(still_frames=4, empty_frames=3),
        reference_dir=tmp_path / "refs",
        label_reader=LabelReader(),
    )


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_each_item_is_inspected_once_with_its_label(tmp_path: Path) -> None:
    service = FakeInspections(delay_s=0.05)
    runtime = _runtime(service, tmp_path)
    source = runtime.cameras.feeds[0].source
    assert isinstance(source, SyntheticBenchSource)

    async def scenario() -> None:
        runtime.start(asyncio.get_running_loop())
        try:
            # two whole items, and the third one being placed
            await _until(lambda: len([r for r in runtime.capture.records if r.done_at]) >= 2, 10)
            await _until(lambda: source.cycle >= 2, 10)
        finally:
            await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    assert len(service.calls) in (2, 3)  # never more than one per item
    first, second = service.calls[:2]
    assert [f.camera_id for f in first[0]] == ["cam0"]
    assert first[1].rma == rma_for(0 * 100_003 + 0) and second[1].rma == rma_for(1)
    assert first[2] != second[2] and first[3] == "station"  # one idempotency key per capture
    done = [r for r in runtime.capture.records if r.done_at][:2]
    for record in done:
        assert record.rest_at is not None and record.done_at is not None and record.item_source == "label"
        assert record.rest_at <= record.still_since <= record.captured_at <= record.done_at
        # four still frames at 30 fps, then the service's 50 ms: well under half a second
        assert 0.05 < record.done_at - record.rest_at < 0.5
    status = runtime.status()
    assert status["last_inspection"]["inspection_id"] in {c.id for c in service.created}
    assert [(r.grade, r.disposition) for r in done] == [("B", "OPEN_BOX")] * 2
    assert runtime.live.seq > 30


def test_a_typed_rma_wins_over_the_label_and_is_used_once(tmp_path: Path) -> None:
    service = FakeInspections()
    runtime = _runtime(service, tmp_path)

    async def scenario() -> None:
        runtime.start(asyncio.get_running_loop())
        runtime.set_item("RMA-TYPED-1", None)
        try:
            await _until(lambda: len(service.created) >= 2, 10)
        finally:
            await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    assert service.calls[0][1].rma == "RMA-TYPED-1"
    assert service.calls[1][1].rma == rma_for(1)


def test_manual_capture_inspects_the_empty_bench_too(tmp_path: Path) -> None:
    service = FakeInspections()
    slow = SyntheticBenchSource(
        "cam0", fps=FPS, schedule=BenchSchedule(empty_s=30, still_s=1), bench=StandinBench(0, labels=True)
    )
    runtime = _runtime(service, tmp_path, [slow])

    async def scenario() -> None:
        runtime.start(asyncio.get_running_loop())
        try:
            await _until(lambda: runtime.live.seq > 3, 5)
            runtime.request_capture()
            await _until(lambda: len(service.created) == 1, 5)
        finally:
            await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    record = runtime.capture.records[-1]
    assert record.manual and record.rest_at is None and record.rma is None
    assert runtime.capture_jpeg(0) is not None and runtime.capture_jpeg(1) is None


def test_a_failing_service_is_reported_and_the_station_keeps_going(tmp_path: Path) -> None:
    service = FakeInspections(fail=True)
    runtime = _runtime(service, tmp_path)

    async def scenario() -> None:
        runtime.start(asyncio.get_running_loop())
        try:
            await _until(lambda: runtime.capture.last_error is not None, 10)
            seq = runtime.live.seq
            await _until(lambda: runtime.live.seq > seq + 5, 5)  # the live view did not stop
        finally:
            await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    assert "the model is not loaded" in (runtime.capture.last_error or "")
    assert runtime.capture.records[0].error and runtime.capture.records[0].inspection_id is None


def test_a_lost_camera_shows_in_the_status_and_the_live_view_says_so(tmp_path: Path) -> None:
    camera = OpenCVSource(0, capture_factory=lambda _t: FlakyCapture({"down": True}), backoff_initial_s=5)
    runtime = _runtime(None, tmp_path, [camera])

    async def scenario() -> None:
        runtime.start(asyncio.get_running_loop())
        try:
            await _until(lambda: runtime.status()["cameras"][0]["state"] == "reconnecting", 5)
            runtime.request_capture()
            await asyncio.sleep(0.1)
        finally:
            await asyncio.to_thread(runtime.stop)

    asyncio.run(scenario())
    status = runtime.status()
    cam = status["cameras"][0]
    assert not status["camera_ready"] and not cam["healthy"] and "cannot open camera 0" in cam["error"]
    assert 0 < cam["retry_in_s"] <= 5
    assert status["inspections_enabled"] is False and not runtime.capture.records  # nothing to capture from


def test_the_shift_check_stores_a_missing_reference_then_warns_against_it(tmp_path: Path) -> None:
    runtime = _runtime(None, tmp_path)

    async def first_shift() -> None:
        runtime.start(asyncio.get_running_loop())
        try:
            await _until(lambda: runtime.references.checked_at is not None, 5)
        finally:
            await asyncio.to_thread(runtime.stop)

    asyncio.run(first_shift())
    ref = tmp_path / "refs" / "reference-cam0.png"
    assert ref.is_file()
    assert runtime.status()["shift_check"]["cameras"][0]["has_reference"] is False
    # the lights were brighter when the reference was stored: the next shift is warned
    stored = cv2.imread(str(ref))
    assert stored is not None
    cv2.imwrite(str(ref), np.clip(stored.astype(np.float32) * 1.6, 0, 255).astype(np.uint8))
    again = _runtime(None, tmp_path)

    async def next_shift() -> None:
        again.start(asyncio.get_running_loop())
        try:
            await _until(lambda: again.references.checked_at is not None, 5)
        finally:
            await asyncio.to_thread(again.stop)

    asyncio.run(next_shift())
    shift = again.status()["shift_check"]
    assert not shift["ok"] and [w["code"] for w in shift["warnings"]] == ["brightness_changed"]


def test_wait_for_change_wakes_on_a_change_and_times_out_otherwise(tmp_path: Path) -> None:
    runtime = _runtime(None, tmp_path)

    async def scenario() -> tuple[float, float]:
        runtime.changes.loop = asyncio.get_running_loop()
        v = runtime.changes.version
        t0 = time.monotonic()
        await runtime.wait_for_change(v, 0.2)
        idle = time.monotonic() - t0
        asyncio.get_running_loop().call_later(0.05, runtime.set_item, "RMA-1", None)
        t1 = time.monotonic()
        await runtime.wait_for_change(runtime.changes.version, 5)
        return idle, time.monotonic() - t1

    idle, woken = asyncio.run(scenario())
    assert idle >= 0.19 and woken < 1.0


def test_the_result_is_shown_from_the_inspection_the_service_returns(tmp_path: Path) -> None:
    runtime = _runtime(None, tmp_path)
    frame = Frame(np.zeros((48, 64, 3), np.uint8), camera_id="cam0")
    inspection = inspection_of([frame], ItemInfo(rma="RMA-7"))
    record = InspectionRecord("cap-1", manual=True, still_since=0.0, captured_at=0.0, submitted_at=0.0)
    runtime.capture.last_capture_id = record.capture_id
    runtime.trigger.state = TriggerState.CAPTURED
    done: concurrent.futures.Future[Inspection] = concurrent.futures.Future()
    done.set_result(inspection)
    runtime.capture.on_result(record, done)
    assert (record.inspection_id, record.grade, record.disposition) == (inspection.id, "B", "OPEN_BOX")
    assert record.error is None and record.done_at is not None
    assert runtime.live.overlay == {"cam0": inspection.views[0].detections}  # drawn on the live view as returned
