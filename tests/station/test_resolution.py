"""The camera's real resolution: 1280x960 and tiling one setting away from the 640x480 default, the live
view at a display size, captures at the camera's own pixels, and item renders that never stall the stream."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from inspector.config import Settings
from inspector.labelmap import default_labelmap
from inspector.pipeline import build_pipeline
from inspector.types import Detections, Frame, Image
from station.liveview import LiveView
from station.sources import open_source
from station.sources.synthetic import BenchSchedule, SyntheticBenchSource
from station.web import build_sources
from tests.api.conftest import served_app
from tests.station.server import LiveServer, station_settings
from tests.station.standin import StandinBench, bench_factory

NAMES = default_labelmap().names


def _frame(w: int, h: int, camera_id: str = "cam0") -> Frame:
    return Frame(image=np.full((h, w, 3), 90, np.uint8), camera_id=camera_id)


def _decoded(jpeg: bytes | None) -> Image:
    assert jpeg is not None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


@pytest.mark.parametrize(
    ("env", "size", "tiling"),
    [
        ({}, (640, 480), "off"),
        (
            {
                "INSPECTOR_CAMERA__WIDTH": "1280",
                "INSPECTOR_CAMERA__HEIGHT": "960",
                "INSPECTOR_DETECTOR__TILING": "item",
            },
            (1280, 960),
            "item",
        ),
    ],
)
def test_the_bench_camera_defaults_to_640x480_and_1280x960_tiled_is_one_setting_away(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], size: tuple[int, int], tiling: str
) -> None:
    for name in (
        "INSPECTOR_CAMERA__SOURCES",
        "INSPECTOR_CAMERA__WIDTH",
        "INSPECTOR_CAMERA__HEIGHT",
        "INSPECTOR_DETECTOR__TILING",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.camera.width, settings.camera.height, settings.detector.tiling) == (*size, tiling)
    sources, _ = build_sources(settings)
    assert [getattr(s, "size", None) for s in sources] == [size], "the synthetic bench renders at the camera size"


def test_a_640x480_camera_still_delivers_640x480_frames() -> None:
    src = open_source("synthetic?empty=0.2&enter=0.2&still=0.3", width=640, height=480, bench_factory=bench_factory)
    src.open()
    try:
        shapes = {src.read().image.shape for _ in range(12)}  # type: ignore[union-attr]
    finally:
        src.close()
    assert shapes == {(480, 640, 3)}


@pytest.mark.parametrize(
    ("sizes", "max_width", "expected"),
    [
        ([(1280, 960)], 960, (960, 720)),
        ([(640, 480)], 960, (640, 480)),  # never scaled up
        ([(1280, 960), (1280, 960)], 960, (960, 360)),  # side by side, the pair within the width
        ([(1280, 960), (640, 480)], 960, (960, 360)),  # the larger camera brought to the smaller's height
        ([(1280, 960)], None, (1280, 960)),
    ],
)
def test_the_live_view_is_encoded_within_the_display_size(
    sizes: Sequence[tuple[int, int]], max_width: int | None, expected: tuple[int, int]
) -> None:
    live = LiveView(max_width=max_width)
    frames = [_frame(w, h, f"cam{i}") for i, (w, h) in enumerate(sizes)]
    live.encode(frames, "EMPTY")
    image = _decoded(live.latest()[1])
    assert (image.shape[1], image.shape[0]) == expected
    assert all(f.image.max() == 90 for f in frames), "the camera's frames are not drawn on"


def test_the_overlay_is_drawn_where_the_item_is_on_the_smaller_view() -> None:
    live = LiveView(max_width=640)
    box = (400.0, 300.0, 1000.0, 800.0)  # camera pixels of a 1280x960 frame: half of it on the view
    live.overlay = {
        "cam0": Detections(
            xyxy=np.array([box], np.float32),
            confidence=np.array([0.9], np.float32),
            class_id=np.array([NAMES.index("scratch")], np.int64),
            class_names=NAMES,
        )
    }
    live.encode([_frame(1280, 960)], "CAPTURED")
    image = _decoded(live.latest()[1]).astype(np.int16)
    drawn = np.abs(image - 90).max(axis=2)[:440] > 40  # above the state label written at the bottom
    assert drawn[200:350, 199:202].all(axis=0).any() and drawn[200:350, 499:502].all(axis=0).any()
    ys, xs = np.nonzero(drawn)
    assert xs.min() >= 197 and xs.max() <= 503 and ys.max() <= 403, "the box and its label at half scale"


class _SlowBench(StandinBench):
    """A bench whose items take ``render_s`` to render, as a 1280x960 item does on a busy machine."""

    def __init__(self, render_s: float) -> None:
        super().__init__(0)
        self.render_s = render_s

    def sample(self, item_seed: int, *, family: str | None = None, defect_free: bool | None = None) -> Any:
        time.sleep(self.render_s)
        return super().sample(item_seed, family=family, defect_free=defect_free)


def test_item_renders_are_ready_before_the_item_enters() -> None:
    """The next item is rendered from halfway through the current one's rest, the first one at open.

    Rendered only when the bench is empty, a render longer than the empty bench stalls the stream.
    """
    fps = 20.0
    schedule = BenchSchedule(empty_s=0.1, enter_s=0.1, still_s=0.8, leave_s=0.1)
    src = SyntheticBenchSource("cam0", fps=fps, schedule=schedule, bench=_SlowBench(render_s=0.3))
    src.open()
    slowest = 0.0
    try:
        for _ in range(src.cycle_frames * 2 + 4):  # into the third item's entry
            t0 = time.perf_counter()
            src.read()
            slowest = max(slowest, time.perf_counter() - t0)
            time.sleep(1.0 / fps)
    finally:
        src.close()
    assert src.cycle == 2 and slowest < 0.15, f"a frame waited {slowest:.2f} s for an item"


class _SizeRecorder:
    """A detector that finds nothing and records the size of every frame it is given."""

    model_version = "size-recorder"
    class_names = NAMES

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        self.sizes.extend((f.width, f.height) for f in frames)
        return [Detections.empty(NAMES) for _ in frames]


def test_a_capture_at_1280x960_reaches_the_detector_at_native_resolution(tmp_path: Path) -> None:
    fps = 15.0
    recorder = _SizeRecorder()
    settings = station_settings(tmp_path, fps=fps)
    app = served_app(settings, build_pipeline(settings, detector=recorder))
    schedule = BenchSchedule(empty_s=0.5, enter_s=0.2, still_s=1.0, leave_s=0.2)
    bench = StandinBench(0, (1280, 960))
    app.state.station_sources = [SyntheticBenchSource("cam0", fps=fps, schedule=schedule, bench=bench)]
    live = LiveServer(app, settings).start()
    try:
        with live.client() as client:
            deadline = time.monotonic() + 20
            while not (client.get("/station/status").json().get("last_inspection") or {}).get("inspection_id"):
                assert time.monotonic() < deadline, "no capture was inspected"
                time.sleep(0.1)
            view = _decoded(client.get("/station/frame.jpg").content)
    finally:
        live.stop()
    assert recorder.sizes and set(recorder.sizes) == {(1280, 960)}
    assert view.shape[1] <= settings.station.live_width, "while the live view is shown smaller"
