"""Detections of every view of one item -> a condition grade with reasons and probabilities.

Pure logic: no file, model or network access. The steps, in order:

1. quality: any view that failed the image-quality gate makes the item UNREADABLE;
2. the item: the most confident ``item`` detection of each view is its box; no item
   in any view means EMPTY;
3. to 5. attribution, severity and probabilities: :mod:`inspector.grading.assessment`
   (or a learned grader's probabilities from :mod:`inspector.grading.features`). The
   reported grade is the worst grade g with P(at least g) >= ``level_probability``, so
   that one unsure detection does not decide alone and adding or growing a defect
   never improves the grade;
   An anomalous region the anomaly model found and no detection explains is one more
   piece of evidence (:func:`unexplained_damage`): it caps the grade per the rubric;
6. family: a confident family prediction that disagrees with the family the SKU's
   category maps to makes the grade WRONG_ITEM.

The retailer's category picks the rubric and the expected family through the
taxonomy (:mod:`inspector.taxonomy`); an unmapped one is graded by the generic
rubric, and the reasons say which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from inspector.grading.assessment import (
    Assessment,
    assess_item,
    condition_probabilities,
    find_item_box,
    level_from,
    normalised,
)
from inspector.grading.base import (
    CODE_BLIND_SPOT,
    CODE_CATEGORY_MAPPED,
    CODE_EMPTY,
    CODE_FAMILY_DISAGREES,
    CODE_FAMILY_USED,
    CODE_GENERIC_RUBRIC,
    CODE_GRADE,
    CODE_IGNORED,
    CODE_LEARNED,
    CODE_OPENED,
    CODE_UNEXPLAINED,
    CODE_UNREADABLE,
    CODE_VIEW_WITHOUT_ITEM,
    CODE_WRONG_ITEM,
    COUNT_PREFIX,
    DEFECT_PREFIX,
    FLAG_PREFIX,
    FamilyPrediction,
)
from inspector.grading.blindspots import BlindSpots, Hidden, hidden_defects
from inspector.grading.features import item_features
from inspector.grading.quality import ImageQuality
from inspector.grading.rubric import GENERIC, CategoryRubric, RubricSet, UnexplainedRule
from inspector.items import ItemInfo, Sku
from inspector.taxonomy import FAMILIES_ONLY, CategoryMapping, Taxonomy
from inspector.types import CONDITION_GRADES, Detections, FloatArray, Grade, GradeLevel, Reason, ViewAnomaly


class GradeModel(Protocol):
    """A learned grader for one category: features -> probability of A..D."""

    @property
    def version(self) -> str: ...

    def predict_proba(self, features: FloatArray) -> Mapping[GradeLevel, float]: ...


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
        params = {
            "defect": f.defect,
            "zone": f.zone,
            "area": f.rel_area,
            "confidence": f.confidence,
            "view": f.view + 1,
            "severity": f.severity,
            "grade": None if effect is GradeLevel.A else effect.value,
        }
        reasons.append(
            (f.severity, Reason(text=text, code=DEFECT_PREFIX + f.defect, detections=(f.ref,), params=params))
        )
        if f.defect == "broken_seal" and f.confidence >= opened_confidence:
            opened = Reason(
                text=f"the package has been opened: broken seal, confidence {f.confidence:.2f} (view {f.view + 1})",
                code=CODE_OPENED,
                detections=(f.ref,),
                params={"confidence": f.confidence, "view": f.view + 1},
            )
            reasons.append((f.severity, opened))
    for name, found in assessment.by_class().items():
        sev = category.defects[name].count_severity(len(found))
        if sev > 0:
            level = grades.level_of(sev).value
            text = f"{len(found)} {_words(name)} defects on the item: severity {sev:.1f}, grade {level}"
            refs = tuple(f.ref for f in found)
            params = {"count": len(found), "defect": name, "severity": sev, "grade": level}
            reasons.append((sev, Reason(text=text, code=COUNT_PREFIX + name, detections=refs, params=params)))
    for flag, sev in assessment.flags:
        text = f"flagged {_words(flag)}: severity {sev:.1f}, grade {grades.level_of(sev).value}"
        params = {"flag": flag, "severity": sev, "grade": grades.level_of(sev).value}
        reasons.append((sev, Reason(text=text, code=FLAG_PREFIX + flag, params=params)))
    reasons.sort(key=lambda sr: -sr[0])  # stable: equal severities keep view/row order
    out = [r for _, r in reasons]
    if assessment.ignored:
        why: dict[str, list[tuple[int, int]]] = {}
        for view, row, because in assessment.ignored:
            why.setdefault(because, []).append((view, row))
        for because, skipped in why.items():
            out.append(
                Reason(
                    text=f"{len(skipped)} detection(s) ignored: {because}",
                    code=CODE_IGNORED,
                    detections=tuple(skipped),
                    params={"count": len(skipped), "because": because},
                )
            )
    for view in assessment.views_without_item:
        out.append(
            Reason(
                text=f"no item found in view {view + 1}: its detections were not graded",
                code=CODE_VIEW_WITHOUT_ITEM,
                params={"view": view + 1},
            )
        )
    return out


def _blind_spot_reason(hidden: Sequence[Hidden]) -> Reason:
    missed = 1.0
    for h in hidden:
        missed *= 1.0 - h.probability
    worst = sorted(hidden, key=lambda h: -h.probability)[:3]
    text = (
        f"chance of a defect the detector missed: {_pct(1.0 - missed)} (most likely "
        + ", ".join(f"{_words(h.defect)} {_pct(h.probability)}" for h in worst)
        + "), from its recall on validation data"
    )
    likely = [{"defect": h.defect, "probability": h.probability} for h in worst]
    return Reason(text=text, code=CODE_BLIND_SPOT, params={"probability": 1.0 - missed, "likely": likely})


def unexplained_damage(
    anomalies: Sequence[ViewAnomaly | None], category: CategoryRubric, rule: UnexplainedRule
) -> tuple[tuple[Hidden, ...], list[Reason]]:
    """Each unexplained anomalous region as evidence for the grade probabilities, and its reason.

    The region enters the probabilities like a possible miss of the detector: one more independent
    event, real with the rubric's ``probability``, at the severity of the ``cap`` grade.
    """
    severity = dict(category.grades.items())[rule.cap]
    events: list[Hidden] = []
    reasons: list[Reason] = []
    for vi, found in enumerate(anomalies):
        if found is None:
            continue
        for ri, region in enumerate(found.regions):
            review = region.share > rule.review_above_share
            then = "a person reviews it" if review else f"grade {rule.cap.value} at best"
            text = (
                f"unexplained damage, {_pct(region.share)} of the item, score {region.peak:.2f} "
                f"(threshold {found.pixel_level:.2f}, view {vi + 1}): no detection explains it, {then}"
            )
            params = {
                "area": region.share,
                "score": region.peak,
                "threshold": found.pixel_level,
                "view": vi + 1,
                "region": ri,
                "grade": rule.cap.value,
                "review": review,
                "model": found.model_version,
            }
            events.append(Hidden(defect=CODE_UNEXPLAINED, probability=rule.probability, severity=severity))
            reasons.append(Reason(text=text, code=CODE_UNEXPLAINED, params=params))
    return tuple(events), reasons


def mapping_reason(mapping: CategoryMapping) -> Reason:
    """Which rubric the retailer's category was graded by, and which mapping entry said so."""
    return Reason(
        text=mapping.describe("rubric"),
        code=CODE_CATEGORY_MAPPED if mapping.mapped else CODE_GENERIC_RUBRIC,
        params=mapping.to_dict(),
    )


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
    class_confidence: Mapping[str, float] | None = None,
    blind_spots: BlindSpots | None = None,
    taxonomy: Taxonomy | None = None,
    anomalies: Sequence[ViewAnomaly | None] = (),
) -> Grade:
    """Grade one item from the detections of all its views (see the module docstring).

    ``class_confidence``: the served model's per-class operating points (see :func:`assess_item`);
    ``blind_spots``: its measured misses, folded into the rubric's probabilities;
    ``taxonomy``: maps the retailer's category to a rubric and a family (default: the eight families only);
    ``anomalies``: per view, what the anomaly model found where no detection is (None: not scored).
    """
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
                params={"view": i + 1, "problems": list(q.problems)},
            )
            for i, q in unreadable
        ]
        return Grade.certain(GradeLevel.UNREADABLE, reasons, rubric_version=version)

    if all(find_item_box(v, rubric.min_confidence) is None for v in views):
        text = f"no item found in {'the view' if len(views) == 1 else f'any of the {len(views)} views'}"
        empty = Reason(text=text, code=CODE_EMPTY, params={"views": len(views)})
        return Grade.certain(GradeLevel.EMPTY, [empty], rubric_version=version)

    pre: list[Reason] = []
    told = sku.category if sku is not None else (item.category if item is not None else None)
    mapping = (taxonomy or FAMILIES_ONLY).resolve(told)
    expected = mapping.family if told is not None else None  # the family the bench should show
    category_name = mapping.rubric if told is not None else None
    if category_name is None and family is not None:
        category_name = family.family
        pre.append(
            Reason(
                text=f"category unknown: graded as {family.family}, as the family classifier says "
                f"(confidence {family.confidence:.2f})",
                code=CODE_FAMILY_USED,
                params={"family": family.family, "confidence": family.confidence},
            )
        )
    category = rubric.for_category(category_name)
    if told is not None and not mapping.plain:
        pre.append(mapping_reason(mapping))
    elif category.category == GENERIC:
        pre.append(Reason(text="category unknown: graded by the generic rubric", code=CODE_GENERIC_RUBRIC))

    flags = item.flags if item is not None else frozenset()
    assessment = assess_item(views, rubric=rubric, category=category, flags=flags, class_confidence=class_confidence)
    hidden: tuple[Hidden, ...] = ()
    if blind_spots is not None:
        hidden = hidden_defects({f.defect for f in assessment.findings}, category, blind_spots)
    rule = rubric.unexplained(category)
    unexplained, unexplained_reasons = unexplained_damage(anomalies, category, rule)
    probs = condition_probabilities(assessment, category, (*hidden, *unexplained))
    source = "rubric"
    model = (learned or {}).get(category.category)
    if model is not None:
        probs = normalised(
            {g: float(model.predict_proba(item_features(assessment, category)).get(g, 0.0)) for g in CONDITION_GRADES}
        )
        source = "learned"
        pre.append(
            Reason(
                text=f"graded by the learned {category.category} grader {model.version}",
                code=CODE_LEARNED,
                params={"category": category.category, "version": model.version},
            )
        )
    level = level_from(probs, rubric.level_probability)
    if unexplained and level.rank < rule.cap.rank:  # the cap holds whatever the probabilities say
        level = rule.cap
    evidence = unexplained_reasons + _evidence_reasons(assessment, category, rubric.opened_confidence)
    if hidden and source == "rubric":
        evidence.append(_blind_spot_reason(hidden))

    if family is not None and expected is not None and family.family != expected:
        if family.confidence >= rubric.wrong_item_confidence:
            wrong = Reason(
                text=f"wrong item: the bench shows a {family.family} (confidence {family.confidence:.2f}) "
                f"but the SKU is a {expected}",
                code=CODE_WRONG_ITEM,
                params={"family": family.family, "confidence": family.confidence, "expected": expected},
            )
            mixed = {GradeLevel.WRONG_ITEM: family.confidence}
            mixed.update({g: p * (1 - family.confidence) for g, p in probs.items()})
            return Grade(
                level=GradeLevel.WRONG_ITEM,
                probabilities=normalised(mixed),
                reasons=(wrong, *pre, *evidence),
                rubric_version=version,
                source=source,
            )
        pre.append(
            Reason(
                text=f"the family classifier suggests a {family.family} (confidence {family.confidence:.2f}, "
                f"below {rubric.wrong_item_confidence:.2f}): graded as the SKU's {expected}",
                code=CODE_FAMILY_DISAGREES,
                params={
                    "family": family.family,
                    "confidence": family.confidence,
                    "threshold": rubric.wrong_item_confidence,
                    "expected": expected,
                },
            )
        )

    n_views = len(views)
    if assessment.findings or assessment.flags or unexplained:
        head = (
            f"grade {level.value} with probability {probs[level]:.2f} ({_probs_text(probs)}) by the "
            f"{category.category} rubric {version}"
        )
    else:
        head = (
            f"no defect found on the item in {n_views} view{'s' if n_views > 1 else ''}: "
            f"grade {level.value} by the {category.category} rubric {version}"
        )
    summary = Reason(
        text=head,
        code=CODE_GRADE,
        detections=tuple(f.ref for f in assessment.findings),
        params={
            "grade": level.value,
            "probability": probs[level],
            "rubric": category.category,
            "version": version,
            "views": n_views,
            "found": bool(assessment.findings or assessment.flags or unexplained),
        },
    )
    return Grade(
        level=level, probabilities=probs, reasons=(summary, *pre, *evidence), rubric_version=version, source=source
    )
