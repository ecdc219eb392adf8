"""A fixed-length feature vector of one item's assessment, for the learned grader.

Per defect class: count, worst severity, largest and total relative area, best
confidence; then one value per item flag; then the rubric's own point severity,
grade probabilities and P(at least B, C, D), so that a learned grader starts from
the rubric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inspector.grading.assessment import (
    Assessment,
    assess_item,
    condition_probabilities,
    find_item_box,
    point_severity,
)
from inspector.grading.rubric import CategoryRubric, RubricSet
from inspector.items import ITEM_FLAGS, ItemInfo, Sku
from inspector.labelmap import DEFECT_CLASSES
from inspector.types import CONDITION_GRADES, Detections, FloatArray

FLAG_ORDER: tuple[str, ...] = tuple(sorted(ITEM_FLAGS))
PER_CLASS = ("count", "max_severity", "max_area", "sum_area", "max_confidence")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{c}.{f}" for c in DEFECT_CLASSES for f in PER_CLASS),
    *(f"flag.{f}" for f in FLAG_ORDER),
    "rubric.severity",
    *(f"rubric.p_{g.value}" for g in CONDITION_GRADES),
    *(f"rubric.p_at_least_{g.value}" for g in CONDITION_GRADES[1:]),
)
N_FEATURES = len(FEATURE_NAMES)


def item_features(assessment: Assessment, category: CategoryRubric) -> FloatArray:
    """The feature vector (float32, ``N_FEATURES`` long) of one assessed item."""
    out = np.zeros(N_FEATURES, dtype=np.float32)
    groups = assessment.by_class()
    for ci, name in enumerate(DEFECT_CLASSES):
        found = groups.get(name, [])
        if not found:
            continue
        base = ci * len(PER_CLASS)
        out[base] = len(found)
        out[base + 1] = max(f.severity for f in found)
        out[base + 2] = max(f.rel_area for f in found)
        out[base + 3] = min(1.0, sum(f.rel_area for f in found))
        out[base + 4] = max(f.confidence for f in found)
    base = len(DEFECT_CLASSES) * len(PER_CLASS)
    for fi, flag in enumerate(FLAG_ORDER):
        out[base + fi] = 1.0 if flag in assessment.item_flags else 0.0
    base += len(FLAG_ORDER)
    out[base] = point_severity(assessment, category)
    probs = condition_probabilities(assessment, category)
    for gi, g in enumerate(CONDITION_GRADES):
        out[base + 1 + gi] = probs[g]
    base += 1 + len(CONDITION_GRADES)
    for gi in range(len(CONDITION_GRADES) - 1):  # P(at least B), (C), (D): the rubric's grade is a cut on these
        out[base + gi] = sum(probs[h] for h in CONDITION_GRADES[gi + 1 :])
    return out


def features_for(
    views: Sequence[Detections], *, rubric: RubricSet, sku: Sku | None = None, item: ItemInfo | None = None
) -> FloatArray | None:
    """The features of one inspection (None when no view shows an item), for training on confirmed grades."""
    if all(find_item_box(v, rubric.min_confidence) is None for v in views):
        return None
    category = rubric.for_category(sku.category if sku is not None else (item.category if item is not None else None))
    flags = item.flags if item is not None else frozenset()
    return item_features(assess_item(views, rubric=rubric, category=category, flags=flags), category)
