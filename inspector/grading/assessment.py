"""What the rubric sees on one item: its box in each view, the defects on it, their severity and the grade odds.

Pure logic shared by the grader and the learned grader's features (steps 2 to 5 of
:mod:`inspector.grading.grader`):

2. the item: the most confident ``item`` detection of each view is its box;
3. attribution: a defect belongs to the item when its centre lies in the item box
   (grown by ``item_margin``); its relative area is the part inside the box over the
   box area, its zone is where its centre falls in the category's zone map;
4. severity: each defect's area step plus zone adjustment, each class's count step,
   each item flag's severity; the point grade is the worst of them;
5. probabilities: every detection is taken to be real with its confidence,
   independently; P(grade at least g) is then computed exactly (see
   :func:`condition_probabilities`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from inspector.grading.base import Finding
from inspector.grading.blindspots import Hidden
from inspector.grading.rubric import CategoryRubric, RubricSet
from inspector.labelmap import ITEM
from inspector.types import CONDITION_GRADES, Detections, GradeLevel

ItemBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the rubric found on one item before probabilities: the learned grader's input too."""

    category: str
    findings: tuple[Finding, ...]
    flags: tuple[tuple[str, float], ...]  # (item flag, severity) for flags the rubric weighs
    ignored: tuple[tuple[int, int, str], ...]  # (view, row, why)
    views_without_item: tuple[int, ...]
    n_views: int
    item_flags: frozenset[str] = frozenset()  # every flag raised, weighed by the rubric or not

    def by_class(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in self.findings:
            out.setdefault(f.defect, []).append(f)
        return out


# ------------------------------------------------------------------------- item boxes


def find_item_box(dets: Detections, min_confidence: float) -> tuple[int, ItemBox] | None:
    """The row and box of the most confident ``item`` detection, if any passes the threshold."""
    if ITEM not in dets.class_names or not len(dets):
        return None
    item_id = dets.class_names.index(ITEM)
    mask = (dets.class_id == item_id) & (dets.confidence >= min_confidence)
    area = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
    mask &= area >= 1.0
    if not mask.any():
        return None
    rows = np.flatnonzero(mask)
    best = int(rows[np.argmax(dets.confidence[rows])])  # first of equals: deterministic
    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[best])
    return best, (x1, y1, x2, y2)


def assess_item(
    views: Sequence[Detections],
    *,
    rubric: RubricSet,
    category: CategoryRubric,
    flags: frozenset[str] = frozenset(),
    class_confidence: Mapping[str, float] | None = None,
) -> Assessment:
    """Attribute each view's defects to its item box and give each its severity.

    ``class_confidence`` holds the served model's own operating point of a class (chosen by the
    cost of its errors); a class without one is kept from ``rubric.min_confidence`` on.
    """
    own = class_confidence or {}
    findings: list[Finding] = []
    ignored: list[tuple[int, int, str]] = []
    without: list[int] = []
    for vi, dets in enumerate(views):
        found = find_item_box(dets, rubric.min_confidence)
        if found is None:
            without.append(vi)
        item_row = found[0] if found else -1
        for d in dets:
            if d.index == item_row or d.class_name == ITEM:
                continue
            if d.class_name not in category.defects:
                ignored.append((vi, d.index, f"class {d.class_name!r} is not in the rubric"))
                continue
            floor = own.get(d.class_name, rubric.min_confidence)
            if d.confidence < floor:
                ignored.append((vi, d.index, f"confidence {d.confidence:.2f} below {floor:.2f}"))
                continue
            if found is None:
                ignored.append((vi, d.index, "no item in this view"))
                continue
            finding = _attribute(vi, d.index, d.class_name, d.confidence, d.xyxy, found[1], rubric, category)
            if finding is None:
                ignored.append((vi, d.index, "not on the item"))
            else:
                findings.append(finding)
    flag_sev = tuple(sorted((f, category.flags[f]) for f in flags if f in category.flags))
    return Assessment(
        category=category.category,
        findings=tuple(findings),
        flags=flag_sev,
        ignored=tuple(ignored),
        views_without_item=tuple(without),
        n_views=len(views),
        item_flags=frozenset(flags),
    )


def _attribute(
    view: int,
    row: int,
    name: str,
    confidence: float,
    xyxy: tuple[float, float, float, float],
    box: ItemBox,
    rubric: RubricSet,
    category: CategoryRubric,
) -> Finding | None:
    x1, y1, x2, y2 = xyxy
    bx1, by1, bx2, by2 = box
    bw, bh = bx2 - bx1, by2 - by1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    mx, my = rubric.item_margin * bw, rubric.item_margin * bh
    if not (bx1 - mx <= cx <= bx2 + mx and by1 - my <= cy <= by2 + my):
        return None
    iw = max(0.0, min(x2, bx2) - max(x1, bx1))
    ih = max(0.0, min(y2, by2) - max(y1, by1))
    rel_area = min(1.0, (iw * ih) / (bw * bh))
    u = min(1.0, max(0.0, (cx - bx1) / bw))
    v = min(1.0, max(0.0, (cy - by1) / bh))
    zone = category.zone_of(u, v, view)
    rule = category.defects[name]
    severity = max(0.0, rule.area_severity(rel_area) + rule.zones.get(zone, 0.0))
    return Finding(
        view=view, row=row, defect=name, confidence=confidence, rel_area=rel_area, zone=zone, severity=severity
    )


# ---------------------------------------------------------------------- probabilities


def _count_below(confidences: Sequence[float], k: int) -> float:
    """P(fewer than k of these independent events happen), each with its probability."""
    if k <= 0:
        return 0.0
    dist = np.zeros(len(confidences) + 1)
    dist[0] = 1.0
    for c in confidences:
        dist[1:] = dist[1:] * (1 - c) + dist[:-1] * c
        dist[0] *= 1 - c
    return float(dist[:k].sum())


def _p_severity_below(
    assessment: Assessment, category: CategoryRubric, threshold: float, hidden: Sequence[Hidden] = ()
) -> float:
    """P(item severity < threshold) when each finding is real with its confidence.

    Classes are independent. Within a class the severity stays below the
    threshold when every finding at or above it is not real and fewer of the
    others are real than the count step that would reach it. A possible miss
    (``hidden``) counts as one more finding of its class, real with its probability.
    """
    if any(sev >= threshold for _, sev in assessment.flags):
        return 0.0
    events: dict[str, list[tuple[float, float]]] = {}
    for f in assessment.findings:
        events.setdefault(f.defect, []).append((f.confidence, f.severity))
    for h in hidden:
        events.setdefault(h.defect, []).append((h.probability, h.severity))
    p = 1.0
    for name, found in events.items():
        rule = category.defects.get(name)  # None: evidence outside the detector's classes (unexplained damage)
        high = [c for c, sev in found if sev >= threshold]
        low = [c for c, sev in found if sev < threshold]
        p *= float(np.prod([1 - c for c in high])) if high else 1.0
        k = rule.min_count_reaching(threshold) if rule is not None else None
        if k is not None:
            p *= _count_below(low, k)
    return p


def condition_probabilities(
    assessment: Assessment, category: CategoryRubric, hidden: Sequence[Hidden] = ()
) -> dict[GradeLevel, float]:
    """P(A), P(B), P(C), P(D) from the findings' confidences (exact, independent findings).

    ``hidden`` adds the defects the detector may have missed (:mod:`inspector.grading.blindspots`).
    """
    below = []
    running = 0.0
    for _, threshold in category.grades.items():
        running = max(running, min(1.0, _p_severity_below(assessment, category, threshold, hidden)))
        below.append(running)  # P(S < t_B) <= P(S < t_C) <= P(S < t_D)
    p_a = below[0]
    probs = {
        GradeLevel.A: p_a,
        GradeLevel.B: below[1] - below[0],
        GradeLevel.C: below[2] - below[1],
        GradeLevel.D: 1.0 - below[2],
    }
    return normalised(probs)


def normalised(probs: Mapping[GradeLevel, float]) -> dict[GradeLevel, float]:
    """Probabilities clipped at zero and scaled to sum to one."""
    clean = {k: max(0.0, float(v)) for k, v in probs.items()}
    total = sum(clean.values())
    if total <= 0:
        raise ValueError("grade probabilities must not all be zero")
    return {k: v / total for k, v in clean.items()}


def level_from(probabilities: Mapping[GradeLevel, float], level_probability: float) -> GradeLevel:
    """The worst condition grade g with P(grade at least as bad as g) >= level_probability."""
    at_least = 0.0
    for level in reversed(CONDITION_GRADES):
        at_least += probabilities.get(level, 0.0)
        if level is not GradeLevel.A and at_least >= level_probability - 1e-12:
            return level
    return GradeLevel.A


def point_severity(assessment: Assessment, category: CategoryRubric) -> float:
    """The item's severity when every finding is taken as real."""
    sev = [f.severity for f in assessment.findings] + [s for _, s in assessment.flags]
    for name, found in assessment.by_class().items():
        sev.append(category.defects[name].count_severity(len(found)))
    return max(sev, default=0.0)
