"""The grader: one table row per rubric rule and outcome, then probabilities, reasons and edge cases."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from inspector.grading import FamilyPrediction, ImageQuality, RubricSet, grade_item, load_rubrics
from inspector.grading.base import CODE_FAMILY_DISAGREES, CODE_GENERIC_RUBRIC, CODE_OPENED, CODE_WRONG_ITEM
from inspector.grading.features import N_FEATURES
from inspector.items import ItemInfo, Sku
from inspector.types import FloatArray, Grade, GradeLevel
from tests.builders import dets
from tests.unit.grading_builders import ITEM_BOX, at, bare, defect, refs, view

A, B, C, D = GradeLevel.A, GradeLevel.B, GradeLevel.C, GradeLevel.D


@pytest.fixture(scope="module")
def rubric() -> RubricSet:
    return load_rubrics()


def sku_of(category: str) -> Sku:
    return Sku(sku=f"T-{category}", category=category, price_new=100.0)


def grade(rubric: RubricSet, category: str | None, *views: object, flags: frozenset[str] = frozenset()) -> Grade:
    sku = sku_of(category) if category else None
    return grade_item(list(views), rubric=rubric, sku=sku, item=ItemInfo(flags=flags))  # type: ignore[arg-type]


# One row per rubric rule: category, views (each a list of defects), expected grade.
# Defects are placed at (u, v) item-box fractions with a relative area; confidence 0.95.
CENTRE, FRAME, SOLE, UPPER, HEM, CAP = (0.5, 0.5), (0.03, 0.5), (0.5, 0.9), (0.5, 0.4), (0.5, 0.97), (0.5, 0.1)
KEYS, SCREEN_HALF = (0.5, 0.75), (0.5, 0.25)

TABLE: list[tuple[str, str | None, list[list[tuple[str, tuple[float, float], float]]], GradeLevel]] = [
    ("phone clean", "phone", [[]], A),
    ("phone small scratch on the screen", "phone", [[("scratch", CENTRE, 0.005)]], B),
    ("phone small scratch on the frame", "phone", [[("scratch", FRAME, 0.005)]], B),
    ("phone larger scratch on the screen", "phone", [[("scratch", CENTRE, 0.02)]], C),
    ("phone larger scratch on the back", "phone", [[], [("scratch", CENTRE, 0.02)]], B),
    ("phone long scratch on the back", "phone", [[], [("scratch", CENTRE, 0.05)]], C),
    ("phone small crack", "phone", [[("crack", CENTRE, 0.05)]], C),
    ("phone spider-web crack", "phone", [[("crack", CENTRE, 0.25)]], D),
    ("phone large dent on the back", "phone", [[], [("dent", CENTRE, 0.1)]], D),
    ("phone small stain is cleanable", "phone", [[("stain", CENTRE, 0.01)]], A),
    ("phone large stain", "phone", [[("stain", CENTRE, 0.06)]], B),
    ("phone missing button", "phone", [[("missing_part", FRAME, 0.002)]], C),
    ("phone broken seal has no grade effect", "phone", [[("broken_seal", CENTRE, 0.01)]], A),
    (
        "phone four scratches on the back",
        "phone",
        [[], [("scratch", (0.2 + 0.2 * i, 0.5), 0.002) for i in range(4)]],
        C,
    ),
    ("phone three cracks", "phone", [[("crack", (0.2 + 0.3 * i, 0.5), 0.01) for i in range(3)]], D),
    ("phone two missing parts", "phone", [[("missing_part", FRAME, 0.002), ("missing_part", (0.97, 0.5), 0.002)]], D),
    ("tablet is graded like a phone", "tablet", [[("crack", CENTRE, 0.25)]], D),
    ("laptop stain on the keyboard", "laptop", [[], [("stain", KEYS, 0.01)]], B),
    ("laptop stain on the screen", "laptop", [[], [("stain", SCREEN_HALF, 0.01)]], A),
    ("laptop crack on the edge", "laptop", [[("crack", FRAME, 0.01)]], B),
    ("laptop crack on the lid", "laptop", [[("crack", CENTRE, 0.01)]], C),
    ("laptop missing keys", "laptop", [[], [("missing_part", KEYS, 0.03)]], C),
    ("shoe small stain on the sole", "shoe", [[("stain", SOLE, 0.02)]], B),
    ("shoe large stain on the upper", "shoe", [[("stain", UPPER, 0.1)]], C),
    ("shoe scratch on the sole", "shoe", [[("scratch", SOLE, 0.02)]], A),
    ("shoe scratch on the upper", "shoe", [[("scratch", UPPER, 0.02)]], B),
    ("shoe torn upper", "shoe", [[("tear", UPPER, 0.02)]], C),
    ("shoe large tear", "shoe", [[("tear", UPPER, 0.15)]], D),
    ("garment crease", "garment", [[("dent", CENTRE, 0.2)]], A),
    ("garment small stain on the body", "garment", [[("stain", CENTRE, 0.01)]], B),
    ("garment small stain on the hem", "garment", [[("stain", HEM, 0.01)]], B),
    ("garment large stain", "garment", [[("stain", CENTRE, 0.2)]], D),
    ("garment tear on the hem", "garment", [[("tear", HEM, 0.01)]], B),
    ("garment tear on the body", "garment", [[("tear", CENTRE, 0.01)]], C),
    ("bottle crack may leak", "bottle", [[("crack", CENTRE, 0.005)]], D),
    ("bottle missing cap", "bottle", [[("missing_part", CAP, 0.02)]], D),
    ("bottle missing part of the body", "bottle", [[("missing_part", CENTRE, 0.02)]], C),
    ("bottle broken seal at the cap", "bottle", [[("broken_seal", CAP, 0.01)]], B),
    ("boxed small tear on the label side", "boxed", [[("tear", CENTRE, 0.01)]], B),
    ("boxed large tear on the label side", "boxed", [[("tear", CENTRE, 0.1)]], C),
    ("boxed large tear on another side", "boxed", [[], [("tear", CENTRE, 0.1)]], C),
    ("boxed broken seal is open-box", "boxed", [[("broken_seal", CENTRE, 0.01)]], B),
    ("boxed crushed box", "boxed", [[("dent", CENTRE, 0.25)]], D),
    ("appliance scratch on the housing", "appliance", [[], [("scratch", CENTRE, 0.02)]], A),
    ("appliance scratch on the front", "appliance", [[("scratch", CENTRE, 0.02)]], B),
    ("appliance cracked housing", "appliance", [[("crack", CENTRE, 0.1)]], D),
    ("unknown category uses the generic rubric", None, [[("scratch", CENTRE, 0.01)]], B),
    ("generic large tear", None, [[("tear", CENTRE, 0.2)]], D),
]


@pytest.mark.parametrize(("name", "category", "spec", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_rubric_table(
    rubric: RubricSet,
    name: str,
    category: str | None,
    spec: list[list[tuple[str, tuple[float, float], float]]],
    expected: GradeLevel,
) -> None:
    views = [view(*(defect(n, uv[0], uv[1], a) for n, uv, a in v)) for v in spec]
    g = grade(rubric, category, *views)
    assert g.level is expected, [r.text for r in g.reasons]
    assert g.rubric_version == rubric.version
    assert g.source == "rubric"
    # every defect appears in the reasons, by (view, row)
    wanted = {(vi, ri + 1) for vi, v in enumerate(spec) for ri in range(len(v))}
    assert wanted <= refs(g.reasons)


@pytest.mark.parametrize(
    ("category", "flags", "expected"),
    [
        ("phone", {"not_functional"}, C),
        ("phone", {"missing_accessories"}, B),
        ("phone", {"opened"}, A),
        ("boxed", {"opened"}, B),
        ("boxed", {"missing_accessories"}, C),
        ("garment", {"not_functional"}, A),
        ("appliance", {"not_functional", "missing_accessories"}, C),
    ],
)
def test_item_flags_carry_their_severity(
    rubric: RubricSet, category: str, flags: set[str], expected: GradeLevel
) -> None:
    g = grade(rubric, category, view(), flags=frozenset(flags))
    assert g.level is expected
    assert g.confidence == pytest.approx(1.0)
    if expected is not A:
        assert any(r.code.startswith("flag:") for r in g.reasons)


# ------------------------------------------------------------------- probabilities


def _probs(g: Grade) -> dict[GradeLevel, float]:
    return {k: g.probabilities.get(k, 0.0) for k in (A, B, C, D)}


@pytest.mark.parametrize(
    ("defects", "expected_level", "expected"),
    [
        # a crack that drives C with confidence 0.6: P(C) = 0.6, the rest to the grade without it
        ([("crack", CENTRE, 0.05, 0.6)], C, {A: 0.4, C: 0.6}),
        ([("crack", CENTRE, 0.05, 0.4)], A, {A: 0.6, C: 0.4}),
        # two unsure cracks: P(at least one real) = 1 - 0.6 * 0.6
        ([("crack", (0.3, 0.5), 0.01, 0.4), ("crack", (0.7, 0.5), 0.01, 0.4)], C, {A: 0.36, C: 0.64}),
        ([("scratch", FRAME, 0.005, 0.9), ("crack", CENTRE, 0.05, 0.6)], C, {A: 0.04, B: 0.36, C: 0.6}),
        # four scratches at 0.5 on the back: each is B, all four together make C
        (
            [("scratch", (0.2 + 0.2 * i, 0.5), 0.002, 0.5) for i in range(4)],
            B,
            {A: 0.0625, B: 1 - 0.0625 - 0.0625, C: 0.0625},
        ),
        # three cracks at 0.9: D needs all three
        ([("crack", (0.2 + 0.3 * i, 0.5), 0.01, 0.9) for i in range(3)], D, {A: 0.001, C: 0.999 - 0.729, D: 0.729}),
    ],
)
def test_probabilities_come_from_confidences(
    rubric: RubricSet,
    defects: list[tuple[str, tuple[float, float], float, float]],
    expected_level: GradeLevel,
    expected: Mapping[GradeLevel, float],
) -> None:
    rows = [defect(n, uv[0], uv[1], a, conf) for n, uv, a, conf in defects]
    back = all(n == "scratch" for n, *_ in defects) and len(defects) == 4
    views = [view(), view(*rows)] if back else [view(*rows)]
    g = grade(rubric, "phone", *views)
    got = _probs(g)
    assert sum(got.values()) == pytest.approx(1.0)
    for level in (A, B, C, D):
        assert got[level] == pytest.approx(expected.get(level, 0.0), abs=1e-5), level
    assert g.level is expected_level


def test_level_probability_is_a_setting(rubric: RubricSet) -> None:
    unsure = view(defect("crack", 0.5, 0.5, 0.05, conf=0.3))
    assert grade(rubric, "phone", unsure).level is A
    cautious = rubric.model_copy(update={"level_probability": 0.25})
    assert grade(cautious, "phone", unsure).level is C


# --------------------------------------------------------------------- outcomes


def test_no_item_in_any_view_is_empty(rubric: RubricSet) -> None:
    g = grade(rubric, "phone", bare(), bare(defect("scratch", 0.5, 0.5, 0.01)))
    assert g.level is GradeLevel.EMPTY
    assert g.probabilities == {GradeLevel.EMPTY: 1.0}
    assert "no item" in g.reasons[0].text


def test_an_unsure_item_is_no_item(rubric: RubricSet) -> None:
    assert grade(rubric, "phone", view(item_conf=0.1)).level is GradeLevel.EMPTY


def _quality(ok: bool, problems: tuple[str, ...] = ()) -> ImageQuality:
    return ImageQuality(brightness=100, sharpness=100, overexposed=0, underexposed=0, ok=ok, problems=problems)


def test_any_unreadable_view_makes_the_item_unreadable(rubric: RubricSet) -> None:
    g = grade_item(
        [view(), view(defect("crack", 0.5, 0.5, 0.3))],
        rubric=rubric,
        sku=sku_of("phone"),
        qualities=[_quality(True), _quality(False, ("too dark",))],
    )
    assert g.level is GradeLevel.UNREADABLE
    assert "view 2" in g.reasons[0].text and "too dark" in g.reasons[0].text


def test_quality_is_checked_before_the_item(rubric: RubricSet) -> None:
    g = grade_item([bare()], rubric=rubric, qualities=[_quality(False, ("blurred",))])
    assert g.level is GradeLevel.UNREADABLE


@pytest.mark.parametrize(
    ("predicted", "confidence", "expected", "code"),
    [
        ("shoe", 0.93, GradeLevel.WRONG_ITEM, CODE_WRONG_ITEM),
        ("shoe", 0.8, GradeLevel.WRONG_ITEM, CODE_WRONG_ITEM),
        ("shoe", 0.6, B, CODE_FAMILY_DISAGREES),
        ("phone", 0.99, B, None),
    ],
)
def test_family_prediction_against_the_sku(
    rubric: RubricSet, predicted: str, confidence: float, expected: GradeLevel, code: str | None
) -> None:
    g = grade_item(
        [view(defect("scratch", 0.5, 0.5, 0.005))],
        rubric=rubric,
        sku=sku_of("phone"),
        family=FamilyPrediction(predicted, confidence),
    )
    assert g.level is expected
    codes = [r.code for r in g.reasons]
    if code is None:
        assert CODE_WRONG_ITEM not in codes and CODE_FAMILY_DISAGREES not in codes
    else:
        reason = next(r for r in g.reasons if r.code == code)
        assert predicted in reason.text and "phone" in reason.text
    if expected is GradeLevel.WRONG_ITEM:
        assert g.probabilities[GradeLevel.WRONG_ITEM] == pytest.approx(confidence)
        assert g.probabilities[B] == pytest.approx(0.95 * (1 - confidence), abs=1e-5)


def test_family_gives_the_rubric_when_the_category_is_unknown(rubric: RubricSet) -> None:
    v = view(defect("stain", 0.5, 0.9, 0.02))  # on a shoe's sole: B; generic: B too, but by another rule
    g = grade_item([v], rubric=rubric, family=FamilyPrediction("shoe", 0.7))
    assert any("graded as shoe" in r.text for r in g.reasons)
    assert "shoe rubric" in g.reasons[0].text
    g2 = grade_item([v], rubric=rubric)
    assert any(r.code == CODE_GENERIC_RUBRIC for r in g2.reasons)


def test_category_from_the_item_when_no_sku(rubric: RubricSet) -> None:
    v = view(defect("stain", 0.5, 0.5, 0.06))
    assert grade_item([v], rubric=rubric, item=ItemInfo(category="phone")).level is B
    assert grade_item([v], rubric=rubric, item=ItemInfo(category="garment")).level is C


# ---------------------------------------------------------------------- reasons


def test_reasons_name_the_detections_and_the_ignored(rubric: RubricSet) -> None:
    v0 = dets(
        [
            ("scratch", 0.9, at(0.5, 0.5, 0.02)),  # row 0: on the item
            ("item", 0.6, (400.0, 100.0, 500.0, 200.0)),  # row 1: a second, weaker item box
            ("item", 0.97, ITEM_BOX),  # row 2: the item
            ("dent", 0.8, (420.0, 120.0, 440.0, 140.0)),  # row 3: inside the weaker box only
            ("crack", 0.1, at(0.5, 0.5, 0.05)),  # row 4: too unsure
        ]
    )
    v1 = bare(defect("tear", 0.5, 0.5, 0.2))  # no item in view 2
    g = grade(rubric, "phone", v0, v1)
    assert g.level is C
    by_code = {r.code: r for r in g.reasons}
    assert by_code["defect:scratch"].detections == ((0, 0),)
    assert "screen" in by_code["defect:scratch"].text
    ignored = [r for r in g.reasons if r.code == "ignored"]
    assert {d for r in ignored for d in r.detections} == {(0, 3), (0, 4), (1, 0)}
    assert any("view 2" in r.text for r in g.reasons if r.code == "view_without_item")
    assert g.reasons[0].code == "grade" and g.reasons[0].detections == ((0, 0),)


@pytest.mark.parametrize(("conf", "opened"), [(0.7, True), (0.5, True), (0.3, False)])
def test_a_confident_broken_seal_means_opened(rubric: RubricSet, conf: float, opened: bool) -> None:
    g = grade(rubric, "bottle", view(defect("broken_seal", 0.5, 0.1, 0.01, conf=conf)))
    assert any(r.code == CODE_OPENED for r in g.reasons) is opened


def test_unknown_classes_are_ignored_with_a_reason(rubric: RubricSet) -> None:
    from inspector.types import Detections

    names = ("item", "scratch", "sticker")
    d = Detections(
        xyxy=np.array([ITEM_BOX, at(0.5, 0.5, 0.01)], dtype=np.float32),
        confidence=np.array([0.9, 0.9], dtype=np.float32),
        class_id=np.array([0, 2]),
        class_names=names,
    )
    g = grade(rubric, "phone", d)
    assert g.level is A
    assert any("sticker" in r.text for r in g.reasons if r.code == "ignored")


@pytest.mark.parametrize(
    ("views", "qualities", "message"),
    [([], (), "at least one view"), ([view()], (_quality(True), _quality(True)), "2 image qualities for 1 views")],
)
def test_bad_calls_are_refused(
    rubric: RubricSet, views: list[object], qualities: tuple[ImageQuality, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        grade_item(views, rubric=rubric, qualities=qualities)  # type: ignore[arg-type]


@pytest.mark.parametrize(("family", "confidence"), [("spaceship", 0.9), ("phone", 1.5), ("phone", -0.1)])
def test_family_prediction_is_validated(family: str, confidence: float) -> None:
    with pytest.raises(ValueError):
        FamilyPrediction(family, confidence)


def test_grading_is_deterministic(rubric: RubricSet) -> None:
    views = [view(defect("crack", 0.5, 0.5, 0.05, 0.55), defect("scratch", 0.03, 0.5, 0.01, 0.7))]
    first = grade(rubric, "phone", *views).to_dict()
    assert all(grade(rubric, "phone", *views).to_dict() == first for _ in range(3))


# ---------------------------------------------------------------------- learned


class _Fixed:
    """A stand-in grade model with fixed output that records the features it saw."""

    version = "test-1"

    def __init__(self, probs: Mapping[GradeLevel, float]) -> None:
        self.probs = probs
        self.seen: list[FloatArray] = []

    def predict_proba(self, features: FloatArray) -> Mapping[GradeLevel, float]:
        self.seen.append(features)
        return self.probs


def test_a_learned_grader_replaces_the_rubric_for_its_category_only(rubric: RubricSet) -> None:
    model = _Fixed({A: 0.1, B: 0.2, C: 0.7})
    v = view(defect("scratch", 0.5, 0.5, 0.005))
    g = grade_item([v], rubric=rubric, sku=sku_of("phone"), learned={"phone": model})
    assert (g.level, g.source) == (C, "learned")
    assert g.probabilities[C] == pytest.approx(0.7)
    assert model.seen and model.seen[0].shape == (N_FEATURES,)
    assert any("defect:scratch" == r.code for r in g.reasons)  # the evidence is still named
    shoe = grade_item([v], rubric=rubric, sku=sku_of("shoe"), learned={"phone": model})
    assert shoe.source == "rubric"
