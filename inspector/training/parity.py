"""Comparing an exported model's detections with its PyTorch source (pure numpy).

Boxes near the confidence threshold may fall on either side of it in two runtimes, so
both runs use half the operating threshold and only boxes above the full threshold must
find a partner: a real divergence shows, a rounding difference at the edge does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inspector.metrics import match
from inspector.types import Detections


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
