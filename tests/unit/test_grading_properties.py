"""Properties of the grader: more or bigger damage never improves the grade; grading is total and stable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inspector.grading import RubricSet, grade_item, load_rubrics
from inspector.items import FAMILIES, ItemInfo, Sku
from inspector.labelmap import DEFECT_CLASSES, default_labelmap
from inspector.types import CONDITION_GRADES, Detections, Grade, GradeLevel

RUBRIC: RubricSet = load_rubrics()
NAMES = default_labelmap().names
ITEM_BOX = (100.0, 80.0, 420.0, 400.0)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Def:
    name: str
    conf: float
    cx: float
    cy: float
    w: float
    h: float

    def box(self, scale: float = 1.0) -> tuple[float, float, float, float]:
        hw, hh = self.w * scale / 2, self.h * scale / 2
        return (self.cx - hw, self.cy - hh, self.cx + hw, self.cy + hh)


defects = st.builds(
    Def,
    name=st.sampled_from(DEFECT_CLASSES),
    conf=st.floats(0.0, 1.0),
    cx=st.floats(60.0, 460.0),  # sometimes off the item
    cy=st.floats(40.0, 440.0),
    w=st.floats(1.0, 250.0),
    h=st.floats(1.0, 250.0),
)
views_st = st.lists(st.lists(defects, max_size=6), min_size=1, max_size=3)
categories = st.sampled_from([*FAMILIES, None])
flag_sets = st.frozensets(st.sampled_from(["not_functional", "missing_accessories", "opened"]), max_size=2)


def to_dets(view: list[Def], grow: dict[int, float] | None = None) -> Detections:
    rows = [("item", 0.9, ITEM_BOX)] + [(d.name, d.conf, d.box((grow or {}).get(i, 1.0))) for i, d in enumerate(view)]
    return Detections(
        xyxy=np.array([r[2] for r in rows], dtype=np.float32),
        confidence=np.array([r[1] for r in rows], dtype=np.float32),
        class_id=np.array([NAMES.index(r[0]) for r in rows], dtype=np.int64),
        class_names=NAMES,
    )


def grade(views: list[Detections], category: str | None, flags: frozenset[str]) -> Grade:
    sku = Sku(sku="S", category=category, price_new=10.0) if category else None
    return grade_item(views, rubric=RUBRIC, sku=sku, item=ItemInfo(flags=flags))


def at_least(g: Grade) -> list[float]:
    """P(grade at least as bad as B), (C), (D)."""
    p = [g.probabilities.get(level, 0.0) for level in CONDITION_GRADES]
    return [sum(p[i:]) for i in (1, 2, 3)]


def no_better(before: Grade, after: Grade) -> None:
    assert after.level.rank >= before.level.rank, (before.level, after.level)
    for b, a in zip(at_least(before), at_least(after), strict=True):
        assert a >= b - 1e-6, (at_least(before), at_least(after))


# Known pitfalls, checked on every run besides the random cases:
CRACK = Def("crack", 0.48, 260.0, 240.0, 71.0, 71.0)  # C on the screen, a bit less than even odds
FAINT = Def("scratch", 0.3, 109.6, 240.0, 10.0, 10.0)  # B on the frame
SURE = Def("scratch", 0.95, 110.0, 300.0, 10.0, 10.0)  # B on the frame
CORNER = Def("dent", 0.9, 415.0, 395.0, 40.0, 40.0)  # centre inside, near the corner


@SETTINGS
@given(views=views_st, extra=defects, where=st.integers(0, 2), category=categories, flags=flag_sets)
@example(views=[[CRACK, FAINT]], extra=SURE, where=0, category="phone", flags=frozenset())  # argmax would improve
def test_adding_a_defect_never_improves_the_grade(
    views: list[list[Def]], extra: Def, where: int, category: str | None, flags: frozenset[str]
) -> None:
    before = grade([to_dets(v) for v in views], category, flags)
    vi = where % len(views)
    more = [[*v, extra] if i == vi else v for i, v in enumerate(views)]
    after = grade([to_dets(v) for v in more], category, flags)
    no_better(before, after)


@SETTINGS
@given(views=views_st, pick=st.integers(0, 100), scale=st.floats(1.0, 4.0), category=categories, flags=flag_sets)
@example(views=[[CORNER]], pick=0, scale=4.0, category="phone", flags=frozenset())  # overlap share falls as it grows
def test_growing_a_defect_never_improves_the_grade(
    views: list[list[Def]], pick: int, scale: float, category: str | None, flags: frozenset[str]
) -> None:
    rows = [(vi, di) for vi, v in enumerate(views) for di in range(len(v))]
    if not rows:
        return
    vi, di = rows[pick % len(rows)]
    before = grade([to_dets(v) for v in views], category, flags)
    grown = [to_dets(v, {di: scale} if i == vi else None) for i, v in enumerate(views)]
    no_better(before, grade(grown, category, flags))


@SETTINGS
@given(views=views_st, flag=st.sampled_from(["not_functional", "missing_accessories", "opened"]), category=categories)
def test_raising_a_flag_never_improves_the_grade(views: list[list[Def]], flag: str, category: str | None) -> None:
    dets = [to_dets(v) for v in views]
    no_better(grade(dets, category, frozenset()), grade(dets, category, frozenset({flag})))


@SETTINGS
@given(views=views_st, category=categories, flags=flag_sets)
def test_grades_are_total_normalised_and_deterministic(
    views: list[list[Def]], category: str | None, flags: frozenset[str]
) -> None:
    dets = [to_dets(v) for v in views]
    g = grade(dets, category, flags)
    assert g.level in CONDITION_GRADES
    assert sum(g.probabilities.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in g.probabilities.values())
    # the reported grade is the worst with P(at least it) >= level_probability
    if g.level is not GradeLevel.A:
        assert at_least(g)[g.level.rank - 1] >= RUBRIC.level_probability - 1e-9
    worse = at_least(g)[g.level.rank :]
    assert all(p < RUBRIC.level_probability for p in worse)
    assert grade(dets, category, flags).to_dict() == g.to_dict()
