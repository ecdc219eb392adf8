"""What is in a dataset: images per split, boxes per class, box sizes, and a mosaic to look at."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspector.data.draw import draw_boxes
from inspector.data.formats import DatasetSpec

# Box size bins by the square root of the box area in pixels (the COCO small/medium/large cuts are 32 and 96).
SIZE_EDGES = (0, 8, 16, 32, 64, 96, 128, 256, float("inf"))


def size_bins() -> list[str]:
    out = []
    for lo, hi in pairwise(SIZE_EDGES):
        out.append(f">={lo:g}px" if hi == float("inf") else f"{lo:g}-{hi:g}px")
    return out


def dataset_stats(spec: DatasetSpec) -> dict[str, Any]:
    names = spec.names
    per_split: Counter[str] = Counter()
    boxes: Counter[int] = Counter()
    images_with: Counter[int] = Counter()
    sizes: list[float] = []
    rel: list[float] = []
    empty = 0
    for r in spec.images:
        per_split[r.split or "train"] += 1
        if len(r.class_ids) == 0:
            empty += 1
        boxes.update(int(c) for c in r.class_ids)
        images_with.update({int(c) for c in r.class_ids})
        if len(r.boxes) and r.width and r.height:
            px = r.pixel_boxes
            area = np.clip(px[:, 2] - px[:, 0], 0, None) * np.clip(px[:, 3] - px[:, 1], 0, None)
            sizes += np.sqrt(area).tolist()
            rel += np.sqrt(area / float(r.width * r.height)).tolist()
    hist, _ = (
        np.histogram(np.asarray(sizes), bins=np.asarray(SIZE_EDGES)) if sizes else (np.zeros(len(SIZE_EDGES) - 1), None)
    )

    def label(c: int) -> str:
        return names[c] if 0 <= c < len(names) else f"unknown({c})"

    return {
        "images": len(spec.images),
        "splits": dict(per_split),
        "empty_images": empty,
        "boxes": int(sum(boxes.values())),
        "classes": list(names),
        "boxes_per_class": {label(c): boxes.get(c, 0) for c in sorted(set(range(len(names))) | set(boxes))},
        "images_per_class": {
            label(c): images_with.get(c, 0) for c in sorted(set(range(len(names))) | set(images_with))
        },
        "box_size_histogram": dict(zip(size_bins(), [int(v) for v in hist], strict=True)),
        "box_size_px": _quantiles(sizes),
        "box_size_relative": _quantiles(rel),
    }


def _quantiles(v: list[float]) -> dict[str, float]:
    if not v:
        return {}
    a = np.asarray(v)
    return {
        k: round(float(np.quantile(a, q)), 4)
        for k, q in (("min", 0), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("max", 1))
    }


def mosaic(spec: DatasetSpec, path: Path, n: int = 16, cols: int = 4, tile: int = 320, seed: int = 0) -> Path:
    """A grid of ``n`` images (those with boxes first, picked with ``seed``) with their boxes drawn."""
    rng = np.random.default_rng(seed)
    with_boxes = [r for r in spec.images if len(r.boxes) and r.path.exists()]
    without = [r for r in spec.images if not len(r.boxes) and r.path.exists()]
    pool = [with_boxes[i] for i in rng.permutation(len(with_boxes))] + [
        without[i] for i in rng.permutation(len(without))
    ]
    tiles = []
    for r in pool:
        raw = cv2.imread(str(r.path), cv2.IMREAD_COLOR)
        if raw is None:
            continue
        img = np.asarray(raw, np.uint8)
        h, w = img.shape[:2]
        drawn = draw_boxes(img, r.boxes * np.array([w, h, w, h]), r.class_ids, spec.names, thickness=max(1, w // 400))
        s = tile / max(h, w)
        small = cv2.resize(drawn, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        cell = np.full((tile, tile, 3), 32, np.uint8)
        cell[: small.shape[0], : small.shape[1]] = small
        tiles.append(cell)
        if len(tiles) == n:
            break
    if not tiles:
        raise ValueError("no readable images to show")
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 32))
    grid = np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"cannot write {path}")
    return path


def histogram_lines(hist: dict[str, int], width: int = 40) -> list[str]:
    """A text histogram for the terminal."""
    top = max(hist.values(), default=0) or 1
    pad = max((len(k) for k in hist), default=0)
    return [f"{k:>{pad}} {'#' * round(v / top * width):<{width}} {v}" for k, v in hist.items()]
