"""Tiny builders for tests: frames, detections, a generated YOLO dataset."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from inspector.labelmap import default_labelmap
from inspector.types import Detections, Frame

T = TypeVar("T")


def frame(w: int = 64, h: int = 48, value: int = 128, camera_id: str = "cam0") -> Frame:
    return Frame(image=np.full((h, w, 3), value, dtype=np.uint8), camera_id=camera_id)


def dets(rows: Sequence[tuple[str, float, tuple[float, float, float, float]]]) -> Detections:
    """Detections from (class name, confidence, xyxy) rows on the station labelmap."""
    names = default_labelmap().names
    if not rows:
        return Detections.empty(names)
    return Detections(
        xyxy=np.array([r[2] for r in rows], dtype=np.float32),
        confidence=np.array([r[1] for r in rows], dtype=np.float32),
        class_id=np.array([names.index(r[0]) for r in rows], dtype=np.int64),
        class_names=names,
    )


def tiny_yolo_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """A YOLO dataset of bright rectangles (class 0) on dark noise; returns data.yaml."""
    rng = np.random.default_rng(seed)
    names = default_labelmap().names
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            w, h = rng.integers(size // 4, size // 2, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            img[y : y + h, x : x + w] = 220
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), img)
            cx, cy = (x + w / 2) / size, (y + h / 2) / size
            (root / "labels" / split / f"{i}.txt").write_text(f"0 {cx:.6f} {cy:.6f} {w / size:.6f} {h / size:.6f}\n")
    data = root / "data.yaml"
    lines = [f"path: {root.resolve()}", "train: images/train", "val: images/val", "names:"]
    lines += [f"  {i}: {n}" for i, n in enumerate(names)]
    data.write_text("\n".join(lines) + "\n")
    return data


def gated(
    real: Callable[..., T], gate: threading.Event, done: threading.Event, entered: threading.Event | None = None
) -> Callable[..., T]:
    """``real`` held at ``gate`` before it runs, with ``done`` set once it has: a worker thread caught mid-call."""

    def call(*args: Any, **kwargs: Any) -> T:
        if entered is not None:
            entered.set()
        gate.wait(10)
        try:
            return real(*args, **kwargs)
        finally:
            done.set()

    return call


class MedianColourScorer:
    """A stand-in anomaly model: a pixel's strangeness is its colour's distance from the crop's median colour.

    Good items in the tests are flat; a painted blotch is far from the median and scores above ``threshold``.
    """

    version = "median-colour-1"

    def __init__(
        self, families: Sequence[str] = ("phone",), threshold: float = 60.0, pixel_threshold: float | None = None
    ) -> None:
        self._families = tuple(families)
        self.threshold = threshold
        self.extra = {} if pixel_threshold is None else {"pixel_threshold": pixel_threshold}
        self.calls = 0

    @property
    def families(self) -> tuple[str, ...]:
        return self._families

    def score(self, crop: np.ndarray[Any, Any], family: str) -> Any:
        from inspector.anomaly.base import AnomalyError, AnomalyResult

        if family not in self._families:
            raise AnomalyError(f"no anomaly model for {family}")
        self.calls += 1
        median = np.median(crop.reshape(-1, 3), axis=0)
        heat = np.linalg.norm(crop.astype(np.float32) - median.astype(np.float32), axis=2).astype(np.float32)
        return AnomalyResult(
            score=float(heat.max()),
            threshold=self.threshold,
            heat=heat,
            family=family,
            model_version=self.version,
            extra=dict(self.extra),
        )


def item_photo(blotch: tuple[int, int, int, int] | None = None, w: int = 640, h: int = 480) -> Frame:
    """A flat grey item at (150, 100)-(500, 400) with a dark blotch (x1, y1, x2, y2) painted on.

    The bench is as flat for 40 px around the item (the scored crop's margin) and textured beyond.
    """
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(40, 200, (h, w, 3), dtype=np.uint8), (3, 3), 0)
    img[60:440, 110:540] = (200, 200, 200)
    if blotch is not None:
        x1, y1, x2, y2 = blotch
        img[y1:y2, x1:x2] = (30, 40, 90)
    return Frame(image=np.asarray(img, np.uint8), camera_id="cam0")
