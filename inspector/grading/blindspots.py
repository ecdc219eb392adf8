"""What the detector may have missed: a prior over defects that no view shows.

A clean picture is not proof of a clean item. A class the detector finds with recall r on
validation data, on a family whose returned items carry it with base rate b, leaves

    P(a defect of that class is there | none was seen) = b (1 - r) / (1 - b r)     (Bayes)

on an item where no view shows one. Each such possible miss enters the grade probabilities
as one more independent event, at the least severe area step the rubric gives its class (the
detector misses the small ones). The expected-value and regret logic of the disposition then
sees a doubtful item as doubtful. Pure: recalls and base rates come in as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inspector.grading.rubric import CategoryRubric

ALL_FAMILIES = "all"  # base rates over every family: used when the item's family has none


@dataclass(frozen=True, slots=True)
class Hidden:
    """A defect that may be on the item unseen: its class, the chance it is there, its severity."""

    defect: str
    probability: float
    severity: float


@dataclass(frozen=True, slots=True)
class BlindSpots:
    """Per-class recall of the served detector and per-family base rates, both from validation data."""

    recall: Mapping[str, float]
    base_rate: Mapping[str, Mapping[str, float]]  # family (or ``all``) -> class -> share of items with one

    def rate(self, family: str, defect: str) -> float | None:
        rates = self.base_rate.get(family) or self.base_rate.get(ALL_FAMILIES) or {}
        return rates.get(defect)

    def missed(self, family: str, defect: str) -> float:
        """P(a ``defect`` is on an item of ``family`` | the detector showed none)."""
        r, b = self.recall.get(defect), self.rate(family, defect)
        if r is None or b is None:
            return 0.0
        r, b = min(1.0, max(0.0, r)), min(1.0, max(0.0, b))
        denominator = 1.0 - b * r
        return 0.0 if denominator <= 0 else b * (1.0 - r) / denominator


def hidden_defects(seen: set[str], category: CategoryRubric, blind: BlindSpots) -> tuple[Hidden, ...]:
    """The possible misses of every rubric class not seen on the item (those without severity are left out)."""
    out = []
    for defect, rule in category.defects.items():
        if defect in seen:
            continue
        p = blind.missed(category.category, defect)
        severity = rule.area_severity(0.0)
        if p > 0.0 and severity > 0.0:
            out.append(Hidden(defect=defect, probability=p, severity=severity))
    return tuple(out)
