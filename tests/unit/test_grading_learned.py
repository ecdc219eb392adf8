"""The learned grader: it replaces the rubric only where it beats it on held-out confirmed grades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inspector.grading import RubricSet, grade_item, load_rubrics
from inspector.grading.features import FEATURE_NAMES, N_FEATURES, features_for
from inspector.grading.learned import (
    LearnedGrader,
    load_learned_graders,
    rubric_levels,
    should_replace_rubric,
    train_learned_grader,
)
from inspector.items import ItemInfo, Sku
from inspector.labelmap import DEFECT_CLASSES
from inspector.types import CONDITION_GRADES, FloatArray, GradeLevel
from tests.unit.grading_builders import defect, view

PHONE = Sku(sku="P", category="phone", price_new=300.0)
RUBRIC: RubricSet = load_rubrics()


# stains are common on this bench (a third of the defects): enough of them to learn from
CLASS_P = [0.35 if c == "stain" else 0.65 / (len(DEFECT_CLASSES) - 1) for c in DEFECT_CLASSES]
STAIN_AREA = FEATURE_NAMES.index("stain.max_area")
STAIN_CONF = FEATURE_NAMES.index("stain.max_confidence")


def _example(rng: np.random.Generator) -> tuple[FloatArray, bool]:
    """Features of a random phone inspection, and whether it shows a sure stain of 1% or more."""
    rows = []
    for _ in range(int(rng.integers(0, 4))):
        name = str(rng.choice(DEFECT_CLASSES, p=CLASS_P))
        conf = float(rng.uniform(0.3, 1.0))
        area = float(rng.choice([0.002, 0.008, 0.02, 0.05, 0.12]))
        rows.append(defect(name, float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)), area, conf))
    feats = features_for([view(*rows)], rubric=RUBRIC, sku=PHONE, item=ItemInfo())
    assert feats is not None
    return feats, bool(feats[STAIN_AREA] >= 0.01 and feats[STAIN_CONF] >= 0.5)


def dataset(n: int, seed: int, liquid_is_c: bool) -> tuple[FloatArray, list[GradeLevel]]:
    """Confirmed grades: the rubric's, except (when ``liquid_is_c``) that people grade stained phones C at least."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(n):
        x, liquid = _example(rng)
        level = rubric_levels(x, RUBRIC.level_probability)[0]
        if liquid_is_c and liquid and level.rank < GradeLevel.C.rank:
            level = GradeLevel.C
        xs.append(x)
        ys.append(level)
    return np.stack(xs), ys


@pytest.fixture(scope="module")
def drifted() -> tuple[FloatArray, list[GradeLevel], FloatArray, list[GradeLevel]]:
    x, y = dataset(400, 1, liquid_is_c=True)
    xh, yh = dataset(200, 2, liquid_is_c=True)
    return x, y, xh, yh


@pytest.fixture(scope="module")
def trained(drifted: tuple[FloatArray, list[GradeLevel], FloatArray, list[GradeLevel]]) -> LearnedGrader:
    torch.set_num_threads(1)
    x, y, _, _ = drifted
    return train_learned_grader(x, y, category="phone", epochs=300, seed=0, version="phone-test")


def test_features_have_a_fixed_layout() -> None:
    x, _ = _example(np.random.default_rng(0))
    assert x.shape == (N_FEATURES,) == (len(FEATURE_NAMES),)
    assert features_for([view(item_conf=0.05)], rubric=RUBRIC, sku=PHONE) is None


def test_a_grader_that_learned_what_people_confirm_replaces_the_rubric(
    drifted: tuple[FloatArray, list[GradeLevel], FloatArray, list[GradeLevel]], trained: LearnedGrader
) -> None:
    _, _, xh, yh = drifted
    decision = should_replace_rubric(trained, xh, yh, level_probability=RUBRIC.level_probability)
    assert decision.n == 200
    assert decision.rubric_accuracy < 0.95  # the drift is real: the rubric misses the stained phones
    assert decision.replace, decision.reason
    assert decision.learned_accuracy >= decision.rubric_accuracy + 0.02


def test_a_grader_cannot_replace_a_rubric_that_people_agree_with(trained: LearnedGrader) -> None:
    xh, yh = dataset(120, 3, liquid_is_c=False)
    decision = should_replace_rubric(trained, xh, yh)
    assert decision.rubric_accuracy == 1.0
    assert not decision.replace


def test_too_few_held_out_examples_keep_the_rubric(
    drifted: tuple[FloatArray, list[GradeLevel], FloatArray, list[GradeLevel]], trained: LearnedGrader
) -> None:
    _, _, xh, yh = drifted
    decision = should_replace_rubric(trained, xh[:20], yh[:20], min_examples=50)
    assert not decision.replace and "only 20 held-out examples" in decision.reason
    assert should_replace_rubric(trained, xh[:0], yh[:0]).reason == "no held-out confirmed examples"


def test_save_load_and_only_winners_are_loaded(tmp_path: Path, trained: LearnedGrader) -> None:
    x, _ = dataset(5, 4, liquid_is_c=True)
    trained.replaces_rubric = False
    trained.save(tmp_path / "phone.pt")
    again = LearnedGrader.load(tmp_path / "phone.pt")
    np.testing.assert_allclose(again.probabilities(x), trained.probabilities(x), atol=1e-6)
    assert again.version == "phone-test"
    assert load_learned_graders(tmp_path) == {}
    trained.replaces_rubric = True
    trained.save(tmp_path / "phone.pt")
    assert set(load_learned_graders(tmp_path)) == {"phone"}
    assert load_learned_graders(None) == {}


def test_the_grader_uses_a_loaded_learned_grader(trained: LearnedGrader) -> None:
    stained = view(defect("stain", 0.5, 0.5, 0.03, 0.95))
    by_rubric = grade_item([stained], rubric=RUBRIC, sku=PHONE)
    learned = grade_item([stained], rubric=RUBRIC, sku=PHONE, learned={"phone": trained})
    assert (by_rubric.level, by_rubric.source) == (GradeLevel.A, "rubric")
    assert (learned.level, learned.source) == (GradeLevel.C, "learned")
    assert sum(learned.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.joinpath("phone.pt").write_bytes(b"junk"), "cannot load learned grader"),
        (lambda d: torch.save({"format": "other"}, d / "phone.pt"), "is not a learned grader"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, make: object, message: str) -> None:
    make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        load_learned_graders(tmp_path)


def test_a_file_must_hold_its_category(tmp_path: Path, trained: LearnedGrader) -> None:
    trained.save(tmp_path / "shoe.pt")
    with pytest.raises(ValueError, match="not 'shoe'"):
        load_learned_graders(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_learned_graders(tmp_path / "nope")


@pytest.mark.parametrize(
    ("features", "grades", "message"),
    [
        (np.zeros((3, 5)), [GradeLevel.A] * 3, "columns"),
        (np.full((2, N_FEATURES), np.nan), [GradeLevel.A] * 2, "finite"),
        (np.zeros((2, N_FEATURES)), [GradeLevel.A, GradeLevel.EMPTY], "must be A..D"),
        (np.zeros((3, N_FEATURES)), [GradeLevel.A] * 2, "as many grades"),
    ],
)
def test_bad_training_data_is_refused(features: FloatArray, grades: list[GradeLevel], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_learned_grader(features, grades, category="phone", epochs=1)


def test_rubric_levels_read_the_rubric_columns() -> None:
    x = np.zeros((len(CONDITION_GRADES), N_FEATURES), dtype=np.float32)
    for i, g in enumerate(CONDITION_GRADES):
        x[i, FEATURE_NAMES.index(f"rubric.p_{g.value}")] = 1.0
    assert rubric_levels(x) == list(CONDITION_GRADES)
