"""Detections of every view of one item -> a condition grade with reasons and probabilities.

Pure logic: no file, model or network access. The steps, in order:

1. quality: any view that failed the image-quality gate makes the item UNREADABLE;
2. the item: the most confident ``item`` detection of each view is its box; no item
   in any view means EMPTY;
3. attribution: a defect belongs to the item when its centre lies in the item box
   (grown by ``item_margin``); its relative area is the part inside the box over the
   box area, its zone is where its centre falls in the category's zone map;
4. severity: each defect's area step plus zone adjustment, each class's count step,
   each item flag's severity; the point grade is the worst of them;
5. probabilities: every detection is taken to be real with its confidence,
   independently; P(grade at least g) is then computed exactly (see
   :func:`condition_probabilities`). The reported grade is the worst grade g with
   P(at least g) >= ``level_probability``, so that one unsure detection does not
   decide alone and adding or growing a defect never improves the grade;
6. family: a confident family prediction that disagrees with the SKU's category
   makes the grade WRONG_ITEM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from inspector.grading.base import (
    CODE_EMPTY,
    CODE_FAMILY_DISAGREES,
    CODE_FAMILY_USED,
    CODE_GENERIC_RUBRIC,
    CODE_GRADE,
    CODE_IGNORED,
    CODE_LEARNED,
    CODE_OPENED,
    CODE_UNREADABLE,
    CODE_VIEW_WITHOUT_ITEM,
    CODE_WRONG_ITEM,
    COUNT_PREFIX,
    DEFECT_PREFIX,
    FLAG_PREFIX,
    FamilyPrediction,
    Finding,
)
from inspector.grading.quality import ImageQuality
from inspector.grading.rubric import GENERIC, CategoryRubric, RubricSet
from inspector.items import ItemInfo, Sku
from inspector.labelmap import ITEM
from inspector.types import CONDITION_GRADES, Detections, FloatArray, Grade, GradeLevel, Reason

ItemBox = tuple[float, float, float, float]


class GradeModel(Protocol):
    """A learned grader for one category: features -> probability of A..D."""

    @property
    def version(self) -> str: ...

    def predict_proba(self, features: FloatArray) -> Mapping[GradeLevel, float]: ...


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
) -> Assessment:
    """Attribute each view's defects to its item box and give each its severity."""
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
            if d.confidence < rubric.min_confidence:
                ignored.append((vi, d.index, f"confidence {d.confidence:.2f} below {rubric.min_confidence:.2f}"))
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


def _p_severity_below(assessment: Assessment, category: CategoryRubric, threshold: float) -> float:
    """P(item severity < threshold) when each finding is real with its confidence.

    Classes are independent. Within a class the severity stays below the
    threshold when every finding at or above it is not real and fewer of the
    others are real than the count step that would reach it.
    """
    if any(sev >= threshold for _, sev in assessment.flags):
        return 0.0
    p = 1.0
    for name, found in assessment.by_class().items():
        rule = category.defects[name]
        high = [f.confidence for f in found if f.severity >= threshold]
        low = [f.confidence for f in found if f.severity < threshold]
        p *= float(np.prod([1 - c for c in high])) if high else 1.0
        k = rule.min_count_reaching(threshold)
        if k is not None:
            p *= _count_below(low, k)
    return p


def condition_probabilities(assessment: Assessment, category: CategoryRubric) -> dict[GradeLevel, float]:
    """P(A), P(B), P(C), P(D) from the findings' confidences (exact, independent findings)."""
    below = []
    running = 0.0
    for _, threshold in category.grades.items():
        running = max(running, min(1.0, _p_severity_below(assessment, category, threshold)))
        below.append(running)  # P(S < t_B) <= P(S < t_C) <= P(S < t_D)
    p_a = below[0]
    probs = {
        GradeLevel.A: p_a,
        GradeLevel.B: below[1] - below[0],
        GradeLevel.C: below[2] - below[1],
        GradeLevel.D: 1.0 - below[2],
    }
    return _normalised(probs)


def _normalised(probs: Mapping[GradeLevel, float]) -> dict[GradeLevel, float]:
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


# -------------------------------------------------------------------------- reasons


def _words(name: str) -> str:
    return name.replace("_", " ")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 else "<0.1%"


def _probs_text(probs: Mapping[GradeLevel, float]) -> str:
    return ", ".join(f"{k.value} {v:.2f}" for k, v in probs.items() if v > 0.0005)


def _evidence_reasons(assessment: Assessment, category: CategoryRubric, opened_confidence: float) -> list[Reason]:
    grades = category.grades
    reasons: list[tuple[float, Reason]] = []
    for f in assessment.findings:
        effect = grades.level_of(f.severity)
        effect_text = f"grade {effect.value}" if effect is not GradeLevel.A else "no grade effect"
        text = (
            f"{_words(f.defect)} on the {_words(f.zone)}, {_pct(f.rel_area)} of the item, confidence "
            f"{f.confidence:.2f} (view {f.view + 1}): severity {f.severity:.1f}, {effect_text}"
        )
        reasons.append((f.severity, Reason(text=text, code=DEFECT_PREFIX + f.defect, detections=(f.ref,))))
        if f.defect == "broken_seal" and f.confidence >= opened_confidence:
            opened = Reason(
                text=f"the package has been opened: broken seal, confidence {f.confidence:.2f} (view {f.view + 1})",
                code=CODE_OPENED,
                detections=(f.ref,),
            )
            reasons.append((f.severity, opened))
    for name, found in assessment.by_class().items():
        sev = category.defects[name].count_severity(len(found))
        if sev > 0:
            level = grades.level_of(sev).value
            text = f"{len(found)} {_words(name)} defects on the item: severity {sev:.1f}, grade {level}"
            refs = tuple(f.ref for f in found)
            reasons.append((sev, Reason(text=text, code=COUNT_PREFIX + name, detections=refs)))
    for flag, sev in assessment.flags:
        text = f"flagged {_words(flag)}: severity {sev:.1f}, grade {grades.level_of(sev).value}"
        reasons.append((sev, Reason(text=text, code=FLAG_PREFIX + flag)))
    reasons.sort(key=lambda sr: -sr[0])  # stable: equal severities keep view/row order
    out = [r for _, r in reasons]
    if assessment.ignored:
        why: dict[str, list[tuple[int, int]]] = {}
        for view, row, because in assessment.ignored:
            why.setdefault(because, []).append((view, row))
        for because, skipped in why.items():
            out.append(
                Reason(
                    text=f"{len(skipped)} detection(s) ignored: {because}", code=CODE_IGNORED, detections=tuple(skipped)
                )
            )
    for view in assessment.views_without_item:
        out.append(
            Reason(
                text=f"no item found in view {view + 1}: its detections were not graded", code=CODE_VIEW_WITHOUT_ITEM
            )
        )
    return out


# ---------------------------------------------------------------------------- grade


def grade_item(
    views: Sequence[Detections],
    *,
    rubric: RubricSet,
    sku: Sku | None = None,
    item: ItemInfo | None = None,
    qualities: Sequence[ImageQuality] = (),
    family: FamilyPrediction | None = None,
    learned: Mapping[str, GradeModel] | None = None,
) -> Grade:
    """Grade one item from the detections of all its views (see the module docstring)."""
    if not views:
        raise ValueError("grading needs at least one view")
    if qualities and len(qualities) != len(views):
        raise ValueError(f"got {len(qualities)} image qualities for {len(views)} views")
    version = rubric.version

    unreadable = [(i, q) for i, q in enumerate(qualities) if not q.ok]
    if unreadable:
        reasons = [
            Reason(
                text=f"view {i + 1} cannot be graded: {', '.join(q.problems)}; retake the picture",
                code=CODE_UNREADABLE,
            )
            for i, q in unreadable
        ]
        return Grade.certain(GradeLevel.UNREADABLE, reasons, rubric_version=version)

    if all(find_item_box(v, rubric.min_confidence) is None for v in views):
        text = f"no item found in {'the view' if len(views) == 1 else f'any of the {len(views)} views'}"
        return Grade.certain(GradeLevel.EMPTY, [Reason(text=text, code=CODE_EMPTY)], rubric_version=version)

    pre: list[Reason] = []
    expected = sku.category if sku is not None else (item.category if item is not None else None)
    category_name = expected
    if category_name is None and family is not None:
        category_name = family.family
        pre.append(
            Reason(
                text=f"category unknown: graded as {family.family}, as the family classifier says "
                f"(confidence {family.confidence:.2f})",
                code=CODE_FAMILY_USED,
            )
        )
    category = rubric.for_category(category_name)
    if category.category == GENERIC:
        pre.append(Reason(text="category unknown: graded by the generic rubric", code=CODE_GENERIC_RUBRIC))

    flags = item.flags if item is not None else frozenset()
    assessment = assess_item(views, rubric=rubric, category=category, flags=flags)
    probs = condition_probabilities(assessment, category)
    source = "rubric"
    model = (learned or {}).get(category.category)
    if model is not None:
        from inspector.grading.features import item_features

        probs = _normalised(
            {g: float(model.predict_proba(item_features(assessment, category)).get(g, 0.0)) for g in CONDITION_GRADES}
        )
        source = "learned"
        pre.append(Reason(text=f"graded by the learned {category.category} grader {model.version}", code=CODE_LEARNED))
    level = level_from(probs, rubric.level_probability)
    evidence = _evidence_reasons(assessment, category, rubric.opened_confidence)

    if family is not None and expected is not None and family.family != expected:
        if family.confidence >= rubric.wrong_item_confidence:
            wrong = Reason(
                text=f"wrong item: the bench shows a {family.family} (confidence {family.confidence:.2f}) "
                f"but the SKU is a {expected}",
                code=CODE_WRONG_ITEM,
            )
            mixed = {GradeLevel.WRONG_ITEM: family.confidence}
            mixed.update({g: p * (1 - family.confidence) for g, p in probs.items()})
            return Grade(
                level=GradeLevel.WRONG_ITEM,
                probabilities=_normalised(mixed),
                reasons=(wrong, *pre, *evidence),
                rubric_version=version,
                source=source,
            )
        pre.append(
            Reason(
                text=f"the family classifier suggests a {family.family} (confidence {family.confidence:.2f}, "
                f"below {rubric.wrong_item_confidence:.2f}): graded as the SKU's {expected}",
                code=CODE_FAMILY_DISAGREES,
            )
        )

    n_views = len(views)
    if assessment.findings or assessment.flags:
        head = (
            f"grade {level.value} with probability {probs[level]:.2f} ({_probs_text(probs)}) by the "
            f"{category.category} rubric {version}"
        )
    else:
        head = (
            f"no defect found on the item in {n_views} view{'s' if n_views > 1 else ''}: "
            f"grade {level.value} by the {category.category} rubric {version}"
        )
    summary = Reason(text=head, code=CODE_GRADE, detections=tuple(f.ref for f in assessment.findings))
    return Grade(
        level=level, probabilities=probs, reasons=(summary, *pre, *evidence), rubric_version=version, source=source
    )
