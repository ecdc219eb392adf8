"""Detection metrics (numpy): matching predictions to truth, average precision, mAP, and the
figures at one operating point a person asks for (:func:`at_operating_point`).

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


# What each figure of :func:`at_operating_point` means, printed with it (``inspector evaluate --json``).
OPERATING_DEFINITIONS = {
    "recall": "per class: true boxes matched by a kept prediction of their class at IoU >= 0.5, over true boxes",
    "precision": "per class: kept predictions that matched a true box of their class at IoU >= 0.5, over kept "
    "predictions (n/a when the class predicted nothing)",
    "kept": "a prediction at or above the operating point: its class's threshold where the version has one, "
    "else the operating confidence",
    "defective_picture": "a picture with at least one true box of a defect class (every class but the "
    "background ones, e.g. 'item')",
    "detection_rate": "share of defective pictures flagged at all: at least one kept defect prediction anywhere in "
    "the picture, whatever its class or place",
    "found_rate": "share of defective pictures where at least one true defect box was matched (same class, "
    "IoU >= 0.5): stricter than detection_rate",
    "false_alarm_rate": "share of clean pictures (no true defect box) with at least one kept defect prediction; "
    "null when the split has no clean picture",
    "worst_misses": "the true defect boxes no kept prediction matched, largest area first",
}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def at_operating_point(
    predictions: Sequence[Detections],
    truths: Sequence[Truth],
    names: Sequence[str],
    *,
    background: Sequence[str] = (),
    iou_min: float = 0.5,
    worst: int = 5,
) -> dict[str, Any]:
    """What a person asks of a detector, from the predictions it keeps at its operating point.

    Per class: recall and precision (one-to-one same-class matching at IoU >= ``iou_min``,
    :func:`match`). Per picture: the detection rate (a defective picture flagged at all),
    the found rate (one of its defects matched) and the false-alarm rate on clean pictures.
    Classes in ``background`` (e.g. the item box) count in the per-class figures but neither
    make a picture defective nor flag it. ``worst_misses`` are the ``worst`` largest unmatched
    true defect boxes as (image index, box index, class, xyxy, area). :data:`OPERATING_DEFINITIONS`
    says each in words.
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions but {len(truths)} labelled images")
    quiet = set(background)

    def name(c: int) -> str:
        return names[c] if 0 <= c < len(names) else f"class {c}"

    n_true: dict[int, int] = {}
    n_pred: dict[int, int] = {}
    n_hit: dict[int, int] = {}
    defective = flagged = found = clean = alarmed = 0
    missed: list[tuple[float, int, int]] = []
    for k, (det, truth) in enumerate(zip(predictions, truths, strict=True)):
        pairs = match(det, truth, iou_min)
        hit_true = {j for _, j, _ in pairs}
        for c in truth.class_id.tolist():
            n_true[c] = n_true.get(c, 0) + 1
        for c in det.class_id.tolist():
            n_pred[c] = n_pred.get(c, 0) + 1
        for i, _, _ in pairs:
            c = int(det.class_id[i])
            n_hit[c] = n_hit.get(c, 0) + 1
        defects = [j for j, c in enumerate(truth.class_id.tolist()) if name(c) not in quiet]
        raised = any(name(c) not in quiet for c in det.class_id.tolist())
        if defects:
            defective += 1
            flagged += raised
            found += any(j in hit_true for j in defects)
            for j in defects:
                if j not in hit_true:
                    x1, y1, x2, y2 = (float(v) for v in truth.xyxy[j])
                    missed.append((max(0.0, x2 - x1) * max(0.0, y2 - y1), k, j))
        else:
            clean += 1
            alarmed += raised
    per_class = {
        name(c): {
            "truths": n_true.get(c, 0),
            "predictions": n_pred.get(c, 0),
            "matched": n_hit.get(c, 0),
            "recall": _share(n_hit.get(c, 0), n_true.get(c, 0)),
            "precision": _share(n_hit.get(c, 0), n_pred.get(c, 0)),
        }
        for c in sorted(set(n_true) | set(n_pred))
    }
    missed.sort(key=lambda m: (-m[0], m[1], m[2]))
    worst_misses = [
        {
            "image": k,
            "box": j,
            "class": name(int(truths[k].class_id[j])),
            "xyxy": [round(float(v), 1) for v in truths[k].xyxy[j]],
            "area": round(area, 1),
        }
        for area, k, j in missed[:worst]
    ]
    return {
        "iou": iou_min,
        "per_class": per_class,
        "pictures": {
            "total": len(truths),
            "defective": defective,
            "flagged": flagged,
            "detection_rate": _share(flagged, defective),
            "found": found,
            "found_rate": _share(found, defective),
            "clean": clean,
            "false_alarms": alarmed,
            "false_alarm_rate": _share(alarmed, clean),
        },
        "missed_defects": len(missed),
        "worst_misses": worst_misses,
    }
