"""Inspection at the camera's own resolution: find the item on the small frame, then tile it.

A backend letterboxes the whole frame to its input side, so on a 1280x960 camera a 2 mm
scratch shrinks to a couple of pixels before the model sees it. :class:`TilingDetector`
wraps any backend: one pass over the whole frame finds the item (and the defects it can
see at that scale), then the item's box is cut into tiles of the model's input size and
each tile is seen pixel for pixel. The tiles' defects are mapped back to the frame, a
defect cut by a tile edge is joined again, and class-wise NMS removes what two
overlapping tiles both saw. Where no item is found, the whole frame is tiled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from inspector.boxes import join_cut, nms
from inspector.config import DetectorConfig
from inspector.detect.base import Detector
from inspector.types import Detections, Frame

TilingMode = Literal["item", "frame"]

# how far an item's box is widened before it is tiled: a defect on its outline stays whole
_ITEM_MARGIN = 0.05
# a box whose edge lies this close to an inner tile edge was cut by it
_SEAM_PX = 2.0
_MAX_DET = 300


def spans(start: float, stop: float, length: int, tile: int, overlap: float) -> list[int]:
    """Starts of ``tile``-long windows covering [start, stop) inside [0, length), overlapping by ``overlap``.

    The span is first widened to one tile (a tile is never cut smaller than the model's input,
    which would be scaled up), then covered by the fewest windows that overlap by at least
    ``overlap`` of a tile, spread evenly.
    """
    if length <= tile:
        return [0]
    lo, hi = max(0.0, start), min(float(length), stop)
    if hi - lo < tile:
        centre = (lo + hi) / 2
        lo = min(max(0.0, centre - tile / 2), float(length - tile))
        hi = lo + tile
    lo_i, hi_i = math.floor(lo), min(length, math.ceil(hi))
    span = hi_i - lo_i
    if span <= tile:
        return [min(lo_i, length - tile)]
    shared = overlap * tile
    n = math.ceil((span - shared) / (tile - shared))
    n = max(n, 2)
    return [min(lo_i + round(i * (span - tile) / (n - 1)), length - tile) for i in range(n)]


@dataclass(frozen=True, slots=True)
class Tile:
    """One window of a frame: its top-left corner and size in frame pixels."""

    x0: int
    y0: int
    width: int
    height: int


def tiles_for(
    region: tuple[float, float, float, float], size: tuple[int, int], tile: tuple[int, int], overlap: float
) -> list[Tile]:
    """The tiles that cover ``region`` (xyxy) of a frame of ``size`` (width, height)."""
    w, h = size
    tw, th = min(tile[0], w), min(tile[1], h)
    xs = spans(region[0], region[2], w, tw, overlap)
    ys = spans(region[1], region[3], h, th, overlap)
    return [Tile(x, y, tw, th) for y in ys for x in xs]


class TilingDetector:
    """Any backend, run first on the whole frame and then on native-resolution tiles of the item.

    The item's box is the whole-frame pass's; the defects are those of both passes, joined
    across tile seams and merged by class-wise NMS. A frame no larger than one tile is seen
    at its own resolution already and gets the whole-frame pass alone.
    """

    # uploads must reach the tiles at the resolution they were taken at (see the API's decode size)
    native_resolution = True

    def __init__(
        self,
        backend: Detector,
        *,
        mode: TilingMode = "item",
        tile: tuple[int, int] = (640, 480),
        overlap: float = 0.2,
        iou: float = 0.5,
        item_class: str = "item",
    ) -> None:
        if tile[0] < 32 or tile[1] < 32:
            raise ValueError(f"a tile of {tile[0]}x{tile[1]} px is too small")
        if not 0 <= overlap < 0.9:
            raise ValueError(f"tile overlap {overlap} must lie in [0, 0.9)")
        self.backend = backend
        self.mode = mode
        self.tile = tile
        self.overlap = overlap
        self.iou = iou
        # a backend's weights and labelmap are fixed for its life: a new model is a new wrapper
        self.model_version: str = backend.model_version
        self.class_names: tuple[str, ...] = backend.class_names
        self._item_id = self.class_names.index(item_class) if item_class in self.class_names else None

    @classmethod
    def from_config(cls, backend: Detector, cfg: DetectorConfig) -> TilingDetector:
        """The wrapper the settings ask for; tiles are the model's input shape unless ``tile_size`` says otherwise."""
        if cfg.tiling == "off":
            raise ValueError("tiling is off in this configuration")
        side = cfg.tile_size or cfg.imgsz
        return cls(
            backend,
            mode=cfg.tiling,
            tile=(side, max(32, round(side / cfg.aspect))),
            overlap=cfg.tile_overlap,
            iou=cfg.iou,
        )

    @classmethod
    def as_configured(cls, backend: Detector, cfg: DetectorConfig) -> Detector:
        """``backend`` on tiles when ``cfg.tiling`` asks for them, else ``backend`` itself."""
        return backend if cfg.tiling == "off" else cls.from_config(backend, cfg)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        whole = self.backend.detect(frames)
        plans = [self._plan(f, d) for f, d in zip(frames, whole, strict=True)]
        crops = [
            Frame(
                image=np.ascontiguousarray(f.image[t.y0 : t.y0 + t.height, t.x0 : t.x0 + t.width]),
                camera_id=f.camera_id,
                captured_at=f.captured_at,
            )
            for f, plan in zip(frames, plans, strict=True)
            for t in plan
        ]
        found = self.backend.detect(crops) if crops else []
        out: list[Detections] = []
        k = 0
        for f, d, plan in zip(frames, whole, plans, strict=True):
            out.append(self._merge(f, d, plan, found[k : k + len(plan)]) if plan else d)
            k += len(plan)
        return out

    def _plan(self, frame: Frame, whole: Detections) -> list[Tile]:
        """The tiles of one frame: around its item, or all over it; none when one tile holds it."""
        size = (frame.width, frame.height)
        if frame.width <= self.tile[0] and frame.height <= self.tile[1]:
            return []
        region: tuple[float, float, float, float] = (0.0, 0.0, float(frame.width), float(frame.height))
        if self.mode == "item" and self._item_id is not None:
            items = np.flatnonzero(whole.class_id == self._item_id)
            if items.size:
                x1, y1, x2, y2 = (float(v) for v in whole.xyxy[items[np.argmax(whole.confidence[items])]])
                mx, my = _ITEM_MARGIN * (x2 - x1), _ITEM_MARGIN * (y2 - y1)
                region = (x1 - mx, y1 - my, x2 + mx, y2 + my)
        return tiles_for(region, size, self.tile, self.overlap)

    def _is_item(self, dets: Detections) -> npt.NDArray[np.bool_]:
        if self._item_id is None:
            return np.zeros(len(dets), dtype=bool)
        return np.asarray(dets.class_id == self._item_id)

    def _merge(self, frame: Frame, whole: Detections, plan: list[Tile], parts: list[Detections]) -> Detections:
        """The whole pass's item boxes and both passes' defects, in frame pixels, each object once."""
        # the item is judged from the whole frame: a tile sees only a piece of it
        is_item = self._is_item(whole)
        items = whole[is_item]
        defects = whole[~is_item]
        boxes, scores, classes = [defects.xyxy], [defects.confidence], [defects.class_id]
        cut = [np.zeros(len(defects), dtype=bool)]
        for t, found in zip(plan, parts, strict=True):
            d = found[~self._is_item(found)]
            xyxy = d.xyxy + np.array([t.x0, t.y0, t.x0, t.y0], dtype=np.float32)
            edge = np.array([t.x0, t.y0, t.x0 + t.width, t.y0 + t.height], dtype=np.float32)
            inner = np.array([t.x0 > 0, t.y0 > 0, t.x0 + t.width < frame.width, t.y0 + t.height < frame.height])
            boxes.append(xyxy)
            scores.append(d.confidence)
            classes.append(d.class_id)
            cut.append(((np.abs(xyxy - edge) <= _SEAM_PX) & inner).any(axis=1))
        joined_boxes, joined_scores, joined_classes = join_cut(
            np.concatenate(boxes).astype(np.float32),
            np.concatenate(scores).astype(np.float32),
            np.concatenate(classes).astype(np.int64),
            np.concatenate(cut),
            _SEAM_PX,
        )
        kept = nms(joined_boxes, joined_scores, joined_classes, self.iou, _MAX_DET)
        return Detections(
            xyxy=np.concatenate([items.xyxy, joined_boxes[kept]]),
            confidence=np.concatenate([items.confidence, joined_scores[kept]]),
            class_id=np.concatenate([items.class_id, joined_classes[kept]]),
            class_names=whole.class_names,
        )
