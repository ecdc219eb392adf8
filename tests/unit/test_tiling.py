"""Native-resolution tiling: boxes come back in frame pixels, once, whatever the backend."""

from __future__ import annotations

import types
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pydantic import ValidationError

import inspector.pipeline as pipeline_module
from inspector.api.media import decode_all, encode_jpeg
from inspector.api.service import InspectionService
from inspector.boxes import join_cut
from inspector.config import CameraConfig, DetectorConfig, Settings
from inspector.detect.tiling import TilingDetector, spans, tiles_for
from inspector.labelmap import default_labelmap
from inspector.types import Detections, Frame, Image

NAMES = tuple(default_labelmap().names)
ITEM_GREY = 200
# each defect class painted in its own colour: the fake backend finds what is painted
COLOURS = {"scratch": (0, 0, 255), "stain": (255, 0, 0)}


class PaintedBackend:
    """Finds the painted rectangles in whatever image it is given, clipped to that image.

    Like a real model on a letterboxed frame, it cannot see defects in an image larger than
    its input (``sees``): there it reports the item alone. Every image it was given is kept.
    """

    def __init__(self, sees: tuple[int, int] = (640, 480)) -> None:
        self.sees = sees
        self.seen: list[tuple[int, int]] = []

    @property
    def model_version(self) -> str:
        return "painted-1"

    @property
    def class_names(self) -> tuple[str, ...]:
        return NAMES

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self._one(f.image) for f in frames]

    def _one(self, image: Image) -> Detections:
        h, w = image.shape[:2]
        self.seen.append((w, h))
        rows: list[tuple[int, float, list[float]]] = []
        item = np.all(image == ITEM_GREY, axis=2)
        if item.any():
            ys, xs = np.nonzero(item)
            rows.append((NAMES.index("item"), 0.9, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]))
        if w <= self.sees[0] and h <= self.sees[1]:
            for name, colour in COLOURS.items():
                mask = np.all(image == colour, axis=2).astype(np.uint8)
                n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
                for x, y, bw, bh, _area in stats[1:n]:
                    rows.append((NAMES.index(name), 0.8, [x, y, x + bw, y + bh]))
        if not rows:
            return Detections.empty(NAMES)
        return Detections(
            xyxy=np.array([r[2] for r in rows], np.float32),
            confidence=np.array([r[1] for r in rows], np.float32),
            class_id=np.array([r[0] for r in rows], np.int64),
            class_names=NAMES,
        )


def scene(
    size: tuple[int, int] = (1280, 960),
    item: tuple[int, int, int, int] | None = (300, 200, 900, 700),
    defects: Sequence[tuple[str, tuple[int, int, int, int]]] = (),
) -> Frame:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    if item is not None:
        x1, y1, x2, y2 = item
        img[y1:y2, x1:x2] = ITEM_GREY
    for name, (x1, y1, x2, y2) in defects:
        img[y1:y2, x1:x2] = COLOURS[name]
    return Frame(image=img)


def boxes_of(dets: Detections, name: str) -> list[list[float]]:
    return [[round(float(v)) for v in b] for b in dets.xyxy[dets.class_id == NAMES.index(name)]]


def test_a_box_across_a_tile_seam_comes_back_once() -> None:
    backend = PaintedBackend()
    # no overlap: the seam at x=640 cuts the scratch in two and no tile sees it whole
    tiler = TilingDetector(backend, mode="frame", tile=(640, 480), overlap=0.0)
    out = tiler.detect([scene(item=None, defects=[("scratch", (600, 100, 700, 110))])])[0]
    assert boxes_of(out, "scratch") == [[600, 100, 700, 110]]


def test_a_box_seen_whole_and_cut_by_overlapping_tiles_comes_back_once() -> None:
    tiler = TilingDetector(PaintedBackend(), mode="frame", tile=(640, 480), overlap=0.2)
    starts = spans(0, 1280, 1280, 640, 0.2)
    assert len(starts) == 3  # 1280 px cannot be covered by two 640 px tiles that overlap
    seam = starts[1] + 640  # the middle tile's right edge, inside the last tile
    out = tiler.detect([scene(item=None, defects=[("scratch", (seam - 30, 50, seam + 30, 60))])])[0]
    assert boxes_of(out, "scratch") == [[seam - 30, 50, seam + 30, 60]]


def test_two_defects_of_a_class_side_by_side_stay_two() -> None:
    tiler = TilingDetector(PaintedBackend(), mode="frame", tile=(640, 480), overlap=0.2)
    defects = [("scratch", (100, 100, 140, 110)), ("scratch", (150, 100, 190, 110))]
    out = tiler.detect([scene(item=None, defects=defects)])[0]
    assert sorted(boxes_of(out, "scratch")) == [[100, 100, 140, 110], [150, 100, 190, 110]]


def test_boxes_map_back_to_the_full_frame() -> None:
    backend = PaintedBackend()
    tiler = TilingDetector(backend, mode="item", tile=(640, 480))
    frame = scene(defects=[("scratch", (820, 640, 860, 650)), ("stain", (320, 220, 340, 240))])
    out = tiler.detect([frame])[0]
    assert boxes_of(out, "scratch") == [[820, 640, 860, 650]]
    assert boxes_of(out, "stain") == [[320, 220, 340, 240]]
    # the item box is the whole pass's, given once, never a tile's piece of it
    assert boxes_of(out, "item") == [[300, 200, 900, 700]]
    assert backend.seen[0] == (1280, 960) and set(backend.seen[1:]) == {(640, 480)}


def test_tiles_cover_the_item_only() -> None:
    backend = PaintedBackend()
    tiler = TilingDetector(backend, mode="item", tile=(640, 480))
    far = ("stain", (1200, 20, 1220, 40))  # on the bench, far from the item
    out = tiler.detect([scene(defects=[far])])[0]
    assert boxes_of(out, "stain") == []
    assert len(backend.seen) - 1 == len(tiles_for((270, 175, 930, 725), (1280, 960), (640, 480), 0.2)) == 4


def test_no_item_found_tiles_the_whole_frame() -> None:
    backend = PaintedBackend()
    tiler = TilingDetector(backend, mode="item", tile=(640, 480))
    corner = ("stain", (1200, 900, 1220, 920))
    out = tiler.detect([scene(item=None, defects=[corner])])[0]
    assert boxes_of(out, "stain") == [[1200, 900, 1220, 920]]
    whole = tiles_for((0, 0, 1280, 960), (1280, 960), (640, 480), 0.2)
    assert len(backend.seen) - 1 == len(whole) == 9
    covered = np.zeros((960, 1280), bool)
    for t in whole:
        covered[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width] = True
    assert covered.all()


def test_a_frame_within_one_tile_is_seen_once_as_it_is() -> None:
    backend = PaintedBackend()
    frame = scene((640, 480), item=(100, 100, 400, 300), defects=[("scratch", (150, 150, 180, 160))])
    plain = PaintedBackend().detect([frame])[0]
    out = TilingDetector(backend, mode="item", tile=(640, 480)).detect([frame])[0]
    assert backend.seen == [(640, 480)]
    assert np.array_equal(out.xyxy, plain.xyxy) and np.array_equal(out.class_id, plain.class_id)


def test_join_cut_leaves_uncut_boxes_alone() -> None:
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [30, 0, 40, 10]], np.float32)
    scores = np.array([0.5, 0.9, 0.7], np.float32)
    classes = np.array([1, 1, 1], np.int64)
    b, s, _ = join_cut(boxes, scores, classes, np.array([False, False, False]))
    assert len(b) == 3
    b, s, _ = join_cut(boxes, scores, classes, np.array([True, False, False]))
    assert sorted(map(tuple, b.tolist())) == [(0, 0, 20, 10), (30, 0, 40, 10)]
    assert sorted(s.tolist()) == pytest.approx([0.7, 0.9])
    b, _, _ = join_cut(boxes, scores, np.array([1, 2, 1], np.int64), np.array([True, False, False]))
    assert len(b) == 3  # another class is another object


def _serving(monkeypatch: pytest.MonkeyPatch, backend: PaintedBackend, **detector: object) -> object:
    monkeypatch.setattr(pipeline_module, "load_detector", lambda cfg, weights, version: backend)
    settings = Settings(detector={"warmup": 0, **detector})
    return pipeline_module.load_serving_detector(settings, Path("weights.pt"), None)


def test_the_setting_off_serves_the_backend_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = PaintedBackend()
    assert _serving(monkeypatch, backend) is backend  # one pass is the default
    tiler = _serving(monkeypatch, backend, imgsz=320, tiling="item")
    assert isinstance(tiler, TilingDetector)
    assert tiler.mode == "item" and tiler.tile == (320, 240) and tiler.backend is backend


def test_tiling_is_one_setting_with_known_values() -> None:
    assert DetectorConfig().tiling == "off"
    with pytest.raises(ValidationError):
        DetectorConfig(tiling="sometimes")
    # a bare `off` in YAML (a settings file, `--config detector.tiling=off`) arrives as false
    assert DetectorConfig.model_validate({"tiling": yaml.safe_load("off")}).tiling == "off"


def test_uploads_reach_a_tiling_detector_at_the_bench_cameras_scale() -> None:
    """Tiling sees a 1280x960 upload whole; a larger photo comes down to the camera's side, not to the model's."""

    def side(detector: object) -> int | None:
        service = types.SimpleNamespace(
            slot=types.SimpleNamespace(pipeline=types.SimpleNamespace(detector=detector)),
            settings=Settings(camera=CameraConfig(width=1280, height=960)),
        )
        return InspectionService.model_input_side(service)  # type: ignore[arg-type]

    plain = types.SimpleNamespace(imgsz=640)
    assert side(plain) == 640
    assert side(TilingDetector(PaintedBackend(), tile=(640, 480))) == 1280
    jpeg = encode_jpeg(scene().image)
    huge = encode_jpeg(cv2.resize(scene().image, (2560, 1920)))
    small = decode_all([jpeg], 40_000_000, side(plain))[0]
    native, shrunk = decode_all([jpeg, huge], 40_000_000, side(TilingDetector(PaintedBackend())))
    assert (small.width, small.size) == (640, (1280, 960))
    assert (native.width, native.height, native.full_size) == (1280, 960, None)
    assert (shrunk.width, shrunk.height, shrunk.size) == (1280, 960, (2560, 1920))


def test_the_synthetic_camera_takes_the_bench_camera_size() -> None:
    from station.sources.base import SourceError
    from station.sources.synthetic import from_spec

    assert from_spec("synthetic?size=1280x960", "cam0", 0, (640, 480), 20.0).size == (1280, 960)
    assert from_spec("synthetic", "cam0", 0, (640, 480), 20.0).size == (640, 480)
    with pytest.raises(SourceError):
        from_spec("synthetic?size=12x9", "cam0", 0, (640, 480), 20.0)
