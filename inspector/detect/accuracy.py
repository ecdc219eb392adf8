"""mAP50 of any detector on a labelled YOLO split, through the detector's own ``detect``.

Every backend is measured on the same path (decode, the backend's pre-processing, its
forward pass, its NMS), so a difference in the figure is a difference in what the
station would serve. The metric is the usual one: per class, detections sorted by
confidence are matched one-to-one to same-class truths at IoU >= 0.5, and AP is the
area under the monotone precision envelope sampled at 101 recall points (as COCO and
ultralytics do); mAP50 is the mean over classes that have truths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inspector.training.parity import iou_matrix
from inspector.types import Detections


@dataclass(frozen=True, slots=True)
class Truth:
    """The labelled boxes of one image, in pixel xyxy."""

    xyxy: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]


def read_yolo_labels(path: Path, width: int, height: int) -> Truth:
    """A YOLO label file (``class cx cy w h``, normalised) as pixel boxes; a missing file is an empty image."""
    rows: list[list[float]] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5:
                rows.append([float(p) for p in parts[:5]])
    if not rows:
        return Truth(np.zeros((0, 4)), np.zeros((0,), dtype=np.int64))
    arr = np.asarray(rows, dtype=np.float64)
    cx, cy, w, h = arr[:, 1] * width, arr[:, 2] * height, arr[:, 3] * width, arr[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return Truth(xyxy, arr[:, 0].astype(np.int64))


def average_precision(recall: npt.NDArray[np.float64], precision: npt.NDArray[np.float64]) -> float:
    """Area under the precision envelope at 101 recall points."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


def map50(predictions: Sequence[Detections], truths: Sequence[Truth], iou_min: float = 0.5) -> dict[str, Any]:
    """mAP at IoU 0.5 over images; ``per_class`` holds AP50 and the truth count of each class with truths."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions but {len(truths)} labelled images")
    scores: dict[int, list[float]] = {}
    hits: dict[int, list[bool]] = {}
    n_true: dict[int, int] = {}
    for det, truth in zip(predictions, truths, strict=True):
        for c in truth.class_id.tolist():
            n_true[c] = n_true.get(c, 0) + 1
        for c in set(det.class_id.tolist()) | set(truth.class_id.tolist()):
            d_idx = np.flatnonzero(det.class_id == c)
            t_idx = np.flatnonzero(truth.class_id == c)
            if d_idx.size == 0:
                continue
            order = d_idx[np.argsort(-det.confidence[d_idx], kind="stable")]
            iou = iou_matrix(det.xyxy[order], truth.xyxy[t_idx])
            taken = np.zeros(t_idx.size, dtype=bool)
            for k, i in enumerate(order):
                hit = False
                if t_idx.size:
                    row = np.where(taken, -1.0, iou[k])
                    j = int(row.argmax())
                    if row[j] >= iou_min:
                        taken[j] = True
                        hit = True
                scores.setdefault(c, []).append(float(det.confidence[i]))
                hits.setdefault(c, []).append(hit)
    per_class: dict[int, dict[str, float]] = {}
    for c, total in sorted(n_true.items()):
        s = np.asarray(scores.get(c, []), dtype=np.float64)
        h = np.asarray(hits.get(c, []), dtype=bool)
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(h[order])
        fp = np.cumsum(~h[order])
        recall = tp / total
        precision = tp / np.maximum(tp + fp, 1)
        per_class[c] = {"ap50": average_precision(recall, precision), "truths": float(total)}
    value = float(np.mean([v["ap50"] for v in per_class.values()])) if per_class else 0.0
    return {"map50": value, "images": len(truths), "per_class": per_class}


def evaluate_split(
    detect: Callable[[Path], Detections], images: Sequence[Path], label_of: Callable[[Path], Path]
) -> dict[str, Any]:
    """mAP50 of ``detect`` (an image file -> its detections) over labelled images."""
    preds: list[Detections] = []
    truths: list[Truth] = []
    for path in images:
        det = detect(path)
        preds.append(det)
        truths.append(_truth_for(path, label_of(path)))
    return map50(preds, truths)


def _truth_for(image: Path, label: Path) -> Truth:
    from PIL import Image

    with Image.open(image) as im:  # the header gives the size the labels are normalised to
        w, h = im.size
    return read_yolo_labels(label, w, h)
