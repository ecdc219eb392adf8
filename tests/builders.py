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
