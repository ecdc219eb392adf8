"""Detection metrics (numpy): matching predictions to truth, average precision, mAP.

Two AP definitions are in use and they differ on purpose, so each says which it is:

* :func:`ap_closed_to_full_recall` is the station's own mAP50 (the bench's accuracy per
  backend): the precision envelope is closed by a straight line from the last recall
  reached to (recall 1, precision 0).
* :func:`ap_zero_past_last_recall` is ultralytics' ``compute_ap`` (8.4): precision drops to 0
  right after the last recall reached. :func:`ap_per_class` builds on it and gives the figures
  of ultralytics' ``ap_per_class``, which the champion/challenger comparison reports.

Both sample the envelope at 101 recall points and integrate with the trapezoid rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from inspector.boxes import iou_matrix
from inspector.types import Detections

Array = np.ndarray[Any, Any]
_RECALL_POINTS = np.linspace(0, 1, 101)


class Boxes(Protocol):
    """Labelled boxes: pixel xyxy and a class id per row."""

    @property
    def xyxy(self) -> Array: ...
    @property
    def class_id(self) -> Array: ...


@dataclass(frozen=True, slots=True)
class Truth:
    """The labelled boxes of one image, in pixel xyxy."""

    xyxy: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]


def match(pred: Detections, truth: Boxes, iou_min: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of same-class boxes, most confident prediction first: (pred, truth, IoU) pairs."""
    iou = iou_matrix(pred.xyxy, truth.xyxy)
    if iou.size:
        iou = np.where(pred.class_id[:, None] == truth.class_id[None, :], iou, 0.0)
    pairs: list[tuple[int, int, float]] = []
    taken: set[int] = set()
    for i in np.argsort(-pred.confidence, kind="stable"):
        if iou.shape[1] == 0:
            break
        row = iou[i].copy()
        if taken:
            row[list(taken)] = 0.0
        j = int(row.argmax())
        if row[j] >= iou_min:
            pairs.append((int(i), j, float(row[j])))
            taken.add(j)
    return pairs


def _envelope_area(mrec: Array, mpre: Array) -> float:
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return float(np.trapezoid(np.interp(_RECALL_POINTS, mrec, mpre), _RECALL_POINTS))


def ap_closed_to_full_recall(recall: npt.NDArray[np.float64], precision: npt.NDArray[np.float64]) -> float:
    """AP of one PR curve, the envelope closed by a straight line to (1, 0): the station's mAP50."""
    return _envelope_area(np.concatenate(([0.0], recall, [1.0])), np.concatenate(([1.0], precision, [0.0])))


def ap_zero_past_last_recall(recall: Array, precision: Array) -> float:
    """AP of one PR curve with precision 0 past the last recall reached, as ultralytics' ``compute_ap``."""
    last = recall[-1] if len(recall) else 1.0
    return _envelope_area(
        np.concatenate(([0.0], recall, [last], [1.0])), np.concatenate(([1.0], precision, [0.0], [0.0]))
    )


def map50(predictions: Sequence[Detections], truths: Sequence[Truth], iou_min: float = 0.5) -> dict[str, Any]:
    """mAP at IoU 0.5 over images; ``per_class`` holds AP50 and the truth count of each class with truths.

    Per class, detections sorted by confidence are matched one-to-one to same-class truths
    at IoU >= ``iou_min`` (:func:`match`); AP is :func:`ap_closed_to_full_recall`, mAP50 the
    mean over the classes that have truths.
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions but {len(truths)} labelled images")
    scores: dict[int, list[float]] = {}
    hits: dict[int, list[bool]] = {}
    n_true: dict[int, int] = {}
    for det, truth in zip(predictions, truths, strict=True):
        for c in truth.class_id.tolist():
            n_true[c] = n_true.get(c, 0) + 1
        matched = {i for i, _, _ in match(det, truth, iou_min)}
        for i, c in enumerate(det.class_id.tolist()):
            scores.setdefault(c, []).append(float(det.confidence[i]))
            hits.setdefault(c, []).append(i in matched)
    per_class: dict[int, dict[str, float]] = {}
    for c, total in sorted(n_true.items()):
        s = np.asarray(scores.get(c, []), dtype=np.float64)
        h = np.asarray(hits.get(c, []), dtype=bool)
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(h[order])
        fp = np.cumsum(~h[order])
        recall = tp / total
        precision = tp / np.maximum(tp + fp, 1)
        per_class[c] = {"ap50": ap_closed_to_full_recall(recall, precision), "truths": float(total)}
    value = float(np.mean([v["ap50"] for v in per_class.values()])) if per_class else 0.0
    return {"map50": value, "images": len(truths), "per_class": per_class}


def ap_per_class(tp: Array, conf: Array, pred_cls: Array, target_cls: Array) -> tuple[Array, Array]:
    """AP per labelled class at each IoU threshold column of ``tp``, as ultralytics' ``ap_per_class``.

    ``tp`` is (n_pred, t) bool (t = 10 for IoU 0.50:0.95). Returns (ap of shape (k, t), the k
    class ids that have labels, ascending); a class with labels but no predictions has AP 0.
    """
    order = np.argsort(-conf)  # ultralytics' own (unstable) sort: ties fall as they do there
    tp, pred_cls = tp[order], pred_cls[order]
    classes, n_labels = np.unique(target_cls, return_counts=True)
    ap = np.zeros((classes.shape[0], tp.shape[1]))
    for k, c in enumerate(classes):
        mine = pred_cls == c
        if mine.sum() == 0 or n_labels[k] == 0:
            continue
        tpc = tp[mine].cumsum(0)
        fpc = (1 - tp[mine]).cumsum(0)
        recall = tpc / (n_labels[k] + 1e-16)
        precision = tpc / (tpc + fpc)
        for j in range(tp.shape[1]):
            ap[k, j] = ap_zero_past_last_recall(recall[:, j], precision[:, j])
    return ap, classes.astype(np.int64)
