"""Comparing an exported model's detections with its PyTorch source (pure numpy).

Boxes near the confidence threshold may fall on either side of it in two runtimes, so
both runs use half the operating threshold and only boxes above the full threshold must
find a partner: a real divergence shows, a rounding difference at the edge does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inspector.types import Detections


def iou_matrix(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Pairwise IoU of xyxy boxes, shape (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    x1 = np.maximum(a64[:, None, 0], b64[None, :, 0])
    y1 = np.maximum(a64[:, None, 1], b64[None, :, 1])
    x2 = np.minimum(a64[:, None, 2], b64[None, :, 2])
    y2 = np.minimum(a64[:, None, 3], b64[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a64[:, 2] - a64[:, 0]) * (a64[:, 3] - a64[:, 1])
    area_b = (b64[:, 2] - b64[:, 0]) * (b64[:, 3] - b64[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match(a: Detections, b: Detections, iou_min: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of same-class boxes, highest confidence of ``a`` first."""
    iou = iou_matrix(a.xyxy, b.xyxy)
    if iou.size:
        iou = np.where(a.class_id[:, None] == b.class_id[None, :], iou, 0.0)
    pairs: list[tuple[int, int, float]] = []
    taken: set[int] = set()
    for i in np.argsort(-a.confidence, kind="stable"):
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


def compare(
    reference: Sequence[Detections],
    exported: Sequence[Detections],
    conf: float,
    *,
    conf_tolerance: float = 1e-3,
    iou_tolerance: float = 0.99,
) -> dict[str, Any]:
    """Parity figures over many images; ``ok`` when every confident box has a close partner."""
    if len(reference) != len(exported):
        raise ValueError(f"{len(reference)} reference results but {len(exported)} exported ones")
    ious: list[float] = []
    diffs: list[float] = []
    unmatched_ref = unmatched_exp = 0
    for ref, exp in zip(reference, exported, strict=True):
        pairs = match(ref, exp)
        for i, j, iou in pairs:
            if ref.confidence[i] >= conf or exp.confidence[j] >= conf:
                ious.append(iou)
                diffs.append(abs(float(ref.confidence[i]) - float(exp.confidence[j])))
        matched_ref = {i for i, _, _ in pairs}
        matched_exp = {j for _, j, _ in pairs}
        unmatched_ref += sum(1 for i in range(len(ref)) if ref.confidence[i] >= conf and i not in matched_ref)
        unmatched_exp += sum(1 for j in range(len(exp)) if exp.confidence[j] >= conf and j not in matched_exp)
    max_diff = max(diffs) if diffs else 0.0
    min_iou = min(ious) if ious else 1.0
    return {
        "images": len(reference),
        "confidence": conf,
        "matched": len(ious),
        "unmatched_reference": unmatched_ref,
        "unmatched_export": unmatched_exp,
        "max_confidence_diff": max_diff,
        "mean_iou": float(np.mean(ious)) if ious else 1.0,
        "min_iou": min_iou,
        # with no confident box on any image the comparison proves nothing: not ok on its own
        "ok": bool(ious)
        and unmatched_ref == 0
        and unmatched_exp == 0
        and max_diff <= conf_tolerance
        and min_iou >= iou_tolerance,
        "tolerances": {"confidence": conf_tolerance, "iou": iou_tolerance},
    }
