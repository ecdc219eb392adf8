"""The disposition policy as data: channel values, processing costs, hard rules, review triggers.

A returns manager edits ``inspector/disposition/policy.yaml`` (or a copy named in
the settings); its ``version`` is stamped on every recommendation. Amounts are in
the policy's currency; recoveries and parts are fractions of the SKU's new price.

The net value of sending an item of true grade g down channel c is::

    proceeds = recovery[g] * price_new
    value    = proceeds - fee_rate * max(proceeds, 0) - handling
               - labour_hours[g] * labour_rate - parts[g] * price_new - freight_per_kg * weight_kg
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inspector.items import Sku, check_flags
from inspector.taxonomy import VALUE_TABLES
from inspector.types import CONDITION_GRADES, DispositionPath, GradeLevel

Money = Annotated[float, Field(ge=0.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

# Paths valued by a channel; the other three are holds with a fixed cost.
VALUE_PATHS: tuple[DispositionPath, ...] = (
    DispositionPath.RESTOCK,
    DispositionPath.OPEN_BOX,
    DispositionPath.REFURBISH,
    DispositionPath.REPAIR,
    DispositionPath.RETURN_TO_VENDOR,
    DispositionPath.LIQUIDATE,
    DispositionPath.DONATE,
    DispositionPath.HARVEST_PARTS,
    DispositionPath.RECYCLE,
)
SAFETY_PATHS: frozenset[DispositionPath] = frozenset(
    {DispositionPath.QUARANTINE, DispositionPath.HAZARDOUS_DISPOSAL, DispositionPath.MANUAL_REVIEW}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GradeValues(_Model):
    """One number per condition grade."""

    A: float = 0.0
    B: float = 0.0
    C: float = 0.0
    D: float = 0.0

    def of(self, level: GradeLevel) -> float:
        if not level.is_condition:
            raise ValueError(f"{level.value} is not a condition grade")
        return float(getattr(self, level.value))


class Channel(_Model):
    """What a channel recovers per true grade and what it costs to get the item there."""

    description: str = ""
    recovery: GradeValues = Field(description="net sale proceeds as a fraction of price_new, per true grade")
    recovery_by_category: dict[str, GradeValues] = Field(
        default_factory=dict, description="per value table (the taxonomy maps the retailer's categories to them)"
    )
    handling: Money = 0.0
    labour_hours: GradeValues = Field(default_factory=GradeValues)
    parts: GradeValues = Field(default_factory=GradeValues, description="parts as a fraction of price_new")
    freight_per_kg: Money = 0.0
    fee_rate: Fraction = 0.0
    categories: list[str] | None = Field(None, description="value tables this channel takes; None = every one")

    @field_validator("labour_hours", "parts")
    @classmethod
    def _not_negative(cls, v: GradeValues) -> GradeValues:
        if min(v.of(g) for g in CONDITION_GRADES) < 0:
            raise ValueError("labour hours and parts must not be negative")
        return v

    @model_validator(mode="after")
    def _known_categories(self) -> Channel:
        for cat in [*(self.categories or []), *self.recovery_by_category]:
            if cat not in VALUE_TABLES:
                raise ValueError(f"unknown category {cat!r}; the value tables are {', '.join(VALUE_TABLES)}")
        return self

    def takes(self, category: str) -> bool:
        return self.categories is None or category in self.categories

    def value(self, level: GradeLevel, sku: Sku, labour_rate: float, table: str | None = None) -> float:
        """Net value of sending an item of true grade ``level`` down this channel (see the module docstring).

        ``table``: the value table the SKU's category maps to (default: the category itself).
        """
        recovery = self.recovery_by_category.get(table or sku.category, self.recovery).of(level)
        proceeds = recovery * sku.price_new
        costs = (
            self.fee_rate * max(proceeds, 0.0)
            + self.handling
            + self.labour_hours.of(level) * labour_rate
            + self.parts.of(level) * sku.price_new
            + self.freight_per_kg * sku.weight_kg
        )
        return proceeds - costs


class Switch(_Model):
    enabled: bool = True
    description: str = ""


class ForbidRule(_Model):
    """A hard rule that takes paths away (it never picks one)."""

    enabled: bool = True
    description: str = ""
    forbids: list[DispositionPath] = Field(min_length=1)
    categories: list[str] | None = Field(None, description="only for these categories; None = every one")

    @field_validator("forbids")
    @classmethod
    def _not_safety(cls, paths: list[DispositionPath]) -> list[DispositionPath]:
        bad = sorted(p.value for p in paths if p in SAFETY_PATHS)
        if bad:
            raise ValueError(f"a rule may not forbid the safety paths {bad}")
        return paths

    @field_validator("categories")
    @classmethod
    def _known(cls, cats: list[str] | None) -> list[str] | None:
        bad = [c for c in cats or [] if c not in VALUE_TABLES]
        if bad:
            raise ValueError(f"unknown categories {bad}; the value tables are {', '.join(VALUE_TABLES)}")
        return cats

    def applies_to(self, category: str | None) -> bool:
        return self.categories is None or (category is not None and category in self.categories)


class VendorRule(_Model):
    """A defective item inside its vendor return window goes back to the vendor."""

    enabled: bool = True
    description: str = ""
    defective_grades: list[GradeLevel] = Field(default_factory=lambda: [GradeLevel.D])
    defective_flags: list[str] = Field(default_factory=lambda: ["not_functional"])

    @field_validator("defective_grades")
    @classmethod
    def _conditions(cls, grades: list[GradeLevel]) -> list[GradeLevel]:
        if any(not g.is_condition for g in grades):
            raise ValueError("defective_grades must be condition grades (A, B, C, D)")
        return grades

    @field_validator("defective_flags")
    @classmethod
    def _flags(cls, flags: list[str]) -> list[str]:
        check_flags(flags)
        return flags


class Rules(_Model):
    """Hard rules, applied before any value is weighed (order: see the recommender)."""

    battery_hazard: Switch = Field(default_factory=Switch)
    recalled: Switch = Field(default_factory=Switch)
    held: Switch = Field(default_factory=Switch)
    vendor_return: VendorRule = Field(default_factory=VendorRule)
    hygiene_opened: ForbidRule
    personalised: ForbidRule
    opened_not_new: ForbidRule


class Review(_Model):
    """When a person decides instead of the policy."""

    max_regret: Money = Field(description="expected regret above this amount: MANUAL_REVIEW")
    min_confidence: Fraction = Field(description="grade confidence below this, when the path depends on the grade")
    cost: Money = Field(description="cost of one manual review (labour and handling)")


class Policy(_Model):
    """The whole disposition policy, under one version."""

    version: str = Field(min_length=1)
    currency: str = "EUR"
    labour_rate: Money = Field(description="cost of one hour of bench labour")
    channels: dict[DispositionPath, Channel]
    hold_costs: dict[DispositionPath, Money] = Field(default_factory=dict)
    rules: Rules
    review: Review

    @field_validator("channels")
    @classmethod
    def _value_paths(cls, channels: dict[DispositionPath, Channel]) -> dict[DispositionPath, Channel]:
        bad = sorted(p.value for p in channels if p not in VALUE_PATHS)
        if bad:
            raise ValueError(f"{bad} are holds, not channels; give their cost under hold_costs")
        if not channels:
            raise ValueError("the policy needs at least one channel")
        return channels

    @field_validator("hold_costs")
    @classmethod
    def _holds(cls, costs: dict[DispositionPath, float]) -> dict[DispositionPath, float]:
        bad = sorted(
            p.value for p in costs if p not in (DispositionPath.QUARANTINE, DispositionPath.HAZARDOUS_DISPOSAL)
        )
        if bad:
            raise ValueError(f"hold_costs takes QUARANTINE and HAZARDOUS_DISPOSAL only, got {bad}")
        return costs

    def hold_cost(self, path: DispositionPath) -> float:
        if path is DispositionPath.MANUAL_REVIEW:
            return self.review.cost
        return float(self.hold_costs.get(path, 0.0))
