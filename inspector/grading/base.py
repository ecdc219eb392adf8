"""Small value types of the grading step (no torch: the family classifier lives elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspector.items import FAMILIES

# Reason codes the grader emits; the recommender reads some of them.
CODE_GRADE = "grade"
CODE_EMPTY = "empty"
CODE_UNREADABLE = "unreadable"
CODE_WRONG_ITEM = "wrong_item"
CODE_FAMILY_DISAGREES = "family_disagrees"
CODE_FAMILY_USED = "family_category"
CODE_OPENED = "opened"  # a broken seal was seen: the package has been opened
CODE_IGNORED = "ignored"
CODE_VIEW_WITHOUT_ITEM = "view_without_item"
CODE_GENERIC_RUBRIC = "generic_rubric"
CODE_CATEGORY_MAPPED = "category_mapped"  # the retailer's category, graded by the rubric its mapping names
CODE_LEARNED = "learned"
CODE_BLIND_SPOT = "blind_spot"  # the chance of a defect the detector missed
CODE_UNEXPLAINED = "unexplained_damage"  # an anomalous region no detection explains (the recommender reads it)
DEFECT_PREFIX = "defect:"
COUNT_PREFIX = "count:"
FLAG_PREFIX = "flag:"


@dataclass(frozen=True, slots=True)
class FamilyPrediction:
    """What the product-family classifier says is on the bench."""

    family: str
    confidence: float

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"family confidence must lie in [0, 1], got {self.confidence}")

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True, slots=True)
class Finding:
    """One defect detection attributed to the item, with what the rubric made of it."""

    view: int
    row: int
    defect: str
    confidence: float
    rel_area: float  # defect area inside the item box / item box area
    zone: str
    severity: float  # area step + zone adjustment, never below 0

    @property
    def ref(self) -> tuple[int, int]:
        return (self.view, self.row)
