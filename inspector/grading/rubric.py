"""The grading rubric: how bad each defect is, per product category, as data.

A returns manager reads and edits these files (``inspector/grading/rubrics``);
the grader only applies them. Severity is a number on one scale for every
category: below ``grades.B`` the item is A (like new), then B, C and D from
their thresholds (by default 1, 2 and 3).

A defect's severity is the highest ``area`` step its relative area reaches
(defect area inside the item box / item box area), plus the adjustment of the
zone its centre falls in (never below 0). A class's ``count`` steps apply to the
number of its defects on the item, over every view. An item flag may carry a
severity of its own (a phone that does not power on is at least C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inspector import taxonomy
from inspector.grading.quality import QualityThresholds
from inspector.items import FAMILIES, ITEM_FLAGS
from inspector.labelmap import DEFECT_CLASSES
from inspector.types import GradeLevel

GENERIC = taxonomy.GENERIC  # the rubric of an item whose category is unknown or not mapped

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Severity = Annotated[float, Field(ge=0.0, le=100.0)]
Box = tuple[Fraction, Fraction, Fraction, Fraction]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AreaStep(_Model):
    """From this relative area on (defect area / item area), the defect has this severity."""

    min_area: Fraction
    severity: Severity


class CountStep(_Model):
    """From this many defects of one class on the item, the class has this severity."""

    min_count: int = Field(ge=1)
    severity: Severity


def _check_steps(values: Sequence[float], severities: Sequence[float], what: str) -> None:
    if list(values) != sorted(values) or len(set(values)) != len(values):
        raise ValueError(f"{what} steps must be listed in strictly increasing order")
    if list(severities) != sorted(severities):
        raise ValueError(f"{what} severities must not decrease: more damage is never less severe")


class DefectRule(_Model):
    """Severity of one defect class by area, zone and count."""

    area: list[AreaStep] = Field(min_length=1)
    zones: dict[str, float] = Field(default_factory=dict, description="severity added in a zone (may be negative)")
    count: list[CountStep] = Field(default_factory=list)
    description: str = ""

    @field_validator("area")
    @classmethod
    def _area_sorted(cls, steps: list[AreaStep]) -> list[AreaStep]:
        _check_steps([s.min_area for s in steps], [s.severity for s in steps], "area")
        if steps[0].min_area != 0.0:
            raise ValueError("the first area step must start at min_area 0 so that every defect has a severity")
        return steps

    @field_validator("count")
    @classmethod
    def _count_sorted(cls, steps: list[CountStep]) -> list[CountStep]:
        _check_steps([float(s.min_count) for s in steps], [s.severity for s in steps], "count")
        return steps

    def area_severity(self, rel_area: float) -> float:
        """The severity of the highest area step reached (steps never decrease)."""
        return max(s.severity for s in self.area if rel_area >= s.min_area)

    def count_severity(self, n: int) -> float:
        """The severity of the highest count step reached, 0 below the first."""
        return max((s.severity for s in self.count if n >= s.min_count), default=0.0)

    def min_count_reaching(self, severity: float) -> int | None:
        """The fewest defects whose count step reaches ``severity`` (None: no step does)."""
        return min((s.min_count for s in self.count if s.severity >= severity), default=None)


class Zone(_Model):
    """A named part of the item: rectangles in item-box fractions (x1, y1, x2, y2), optionally per view."""

    name: str = Field(min_length=1)
    regions: list[Box] = Field(default_factory=lambda: [(0.0, 0.0, 1.0, 1.0)], min_length=1)
    views: list[int] | None = Field(None, description="view indices this zone applies to; None = every view")
    description: str = ""

    @field_validator("regions")
    @classmethod
    def _ordered(cls, regions: list[Box]) -> list[Box]:
        for x1, y1, x2, y2 in regions:
            if x2 <= x1 or y2 <= y1:
                raise ValueError(f"zone region {(x1, y1, x2, y2)} must have x1 < x2 and y1 < y2")
        return regions

    @property
    def covers_everything(self) -> bool:
        return self.views is None and any(r == (0.0, 0.0, 1.0, 1.0) for r in self.regions)

    def contains(self, u: float, v: float, view: int) -> bool:
        if self.views is not None and view not in self.views:
            return False
        return any(x1 <= u <= x2 and y1 <= v <= y2 for x1, y1, x2, y2 in self.regions)


class GradeThresholds(_Model):
    """Lowest severity of each grade below A."""

    B: Severity = 1.0
    C: Severity = 2.0
    D: Severity = 3.0

    @model_validator(mode="after")
    def _increasing(self) -> GradeThresholds:
        if not (0 < self.B < self.C < self.D):
            raise ValueError(f"grade thresholds must satisfy 0 < B < C < D, got B={self.B} C={self.C} D={self.D}")
        return self

    def level_of(self, severity: float) -> GradeLevel:
        if severity >= self.D:
            return GradeLevel.D
        if severity >= self.C:
            return GradeLevel.C
        if severity >= self.B:
            return GradeLevel.B
        return GradeLevel.A

    def items(self) -> tuple[tuple[GradeLevel, float], ...]:
        return ((GradeLevel.B, self.B), (GradeLevel.C, self.C), (GradeLevel.D, self.D))


class UnexplainedRule(_Model):
    """What damage the anomaly model sees and no detection explains does to the grade.

    Such a region is one more piece of evidence, real with ``probability``, of severity at the
    ``cap`` grade's threshold: the item is graded ``cap`` or worse. A region larger than
    ``review_above_share`` of the item sends it to a person, whatever the expected values say.
    """

    cap: GradeLevel = Field(GradeLevel.B, description="the best grade an item with unexplained damage gets")
    review_above_share: Fraction = Field(0.05, description="a region above this share of the item: manual review")
    probability: Fraction = Field(
        0.8, description="the chance that a region above the model's threshold is real damage, not a false alarm"
    )

    @field_validator("cap")
    @classmethod
    def _worse_than_a(cls, value: GradeLevel) -> GradeLevel:
        if value not in (GradeLevel.B, GradeLevel.C, GradeLevel.D):
            raise ValueError(f"cap must be B, C or D, got {value.value}")
        return value


class CategoryRubric(_Model):
    """The rubric of one product category."""

    category: str
    description: str = ""
    zones: list[Zone] = Field(min_length=1, description="first zone containing a defect's centre wins")
    defects: dict[str, DefectRule]
    flags: dict[str, Severity] = Field(default_factory=dict, description="item flag -> severity")
    grades: GradeThresholds = Field(default_factory=GradeThresholds)
    unexplained_damage: UnexplainedRule | None = Field(None, description="None: the rubric set's shared rule")

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in (*FAMILIES, GENERIC):
            raise ValueError(f"unknown category {value!r}; expected one of {', '.join((*FAMILIES, GENERIC))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CategoryRubric:
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.category}: zone names must be unique, got {names}")
        if not self.zones[-1].covers_everything:
            raise ValueError(
                f"{self.category}: the last zone must cover the whole item in every view "
                "(regions [[0, 0, 1, 1]], no views) so that every defect has a zone"
            )
        missing = [c for c in DEFECT_CLASSES if c not in self.defects]
        unknown = [c for c in self.defects if c not in DEFECT_CLASSES]
        if missing or unknown:
            raise ValueError(
                f"{self.category}: defects must list exactly the defect classes {', '.join(DEFECT_CLASSES)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        for cls_name, rule in self.defects.items():
            bad = [z for z in rule.zones if z not in names]
            if bad:
                raise ValueError(f"{self.category}: {cls_name} names unknown zones {bad}; zones are {names}")
        bad_flags = sorted(set(self.flags) - ITEM_FLAGS)
        if bad_flags:
            raise ValueError(f"{self.category}: unknown flags {bad_flags}; expected some of {sorted(ITEM_FLAGS)}")
        return self

    def zone_of(self, u: float, v: float, view: int) -> str:
        """The zone of a point given in item-box fractions (the last zone catches everything)."""
        for zone in self.zones:
            if zone.contains(u, v, view):
                return zone.name
        return self.zones[-1].name


class RubricSet(_Model):
    """Every category's rubric plus the settings shared by all of them, under one version."""

    version: str = Field(min_length=1, description="stamped on every grade")
    min_confidence: Fraction = Field(0.25, description="detections below this are ignored")
    item_margin: Fraction = Field(
        0.02, description="a defect belongs to the item when its centre lies in the item box grown by this fraction"
    )
    level_probability: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.5, description="the grade is the worst grade g with P(grade at least as bad as g) >= this"
    )
    wrong_item_confidence: Fraction = Field(
        0.8, description="a family prediction that disagrees with the SKU at this confidence or more: WRONG_ITEM"
    )
    opened_confidence: Fraction = Field(
        0.5, description="a broken seal at this confidence or more counts as an opened package"
    )
    quality: QualityThresholds = Field(default_factory=QualityThresholds)
    unexplained_damage: UnexplainedRule = Field(default_factory=UnexplainedRule)
    rubrics: dict[str, CategoryRubric]

    @model_validator(mode="after")
    def _complete(self) -> RubricSet:
        for key, rubric in self.rubrics.items():
            if key != rubric.category:
                raise ValueError(f"rubric filed under {key!r} is for category {rubric.category!r}")
        missing = [c for c in (*FAMILIES, GENERIC) if c not in self.rubrics]
        if missing:
            raise ValueError(f"rubrics missing for categories: {', '.join(missing)}")
        return self

    def unexplained(self, category: CategoryRubric) -> UnexplainedRule:
        """The category's own rule for unexplained damage, else the shared one."""
        return category.unexplained_damage or self.unexplained_damage

    def for_category(self, category: str | None) -> CategoryRubric:
        """The category's rubric; the generic one when the category is unknown."""
        if category is None or category not in self.rubrics:
            return self.rubrics[GENERIC]
        return self.rubrics[category]
