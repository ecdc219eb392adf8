"""Item-level evaluation: the rates' definitions by hand, and the pipeline judged on a few rendered items."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from inspector.disposition import load_catalogue, load_policy
from inspector.grading import load_rubrics
from inspector.labelmap import ITEM, default_labelmap
from inspector.pipeline import Pipeline
from inspector.types import Detections, DispositionPath, Frame, GradeLevel
from inspector.verdicts import (
    HELD_OUT_BASE,
    BenchItem,
    Verdict,
    calibration,
    evaluate_items,
    held_out_items,
    parse_seeds,
    settings_from,
    summarise,
)
from inspector.verdicts.run import truth_detections

A, B, C, D, EMPTY = GradeLevel.A, GradeLevel.B, GradeLevel.C, GradeLevel.D, GradeLevel.EMPTY
RESTOCK, OPEN_BOX, REVIEW = DispositionPath.RESTOCK, DispositionPath.OPEN_BOX, DispositionPath.MANUAL_REVIEW


def verdict(
    deserved: GradeLevel,
    got: GradeLevel,
    *,
    path: DispositionPath = RESTOCK,
    deserved_path: DispositionPath = RESTOCK,
    best: float | None = 100.0,
    value: float | None = 100.0,
    confidence: float = 0.9,
    family: str = "phone",
) -> Verdict:
    return Verdict(
        key=f"{deserved}-{got}",
        family=family,
        deserved=deserved,
        got=got,
        deserved_path=deserved_path,
        got_path=path,
        confidence=confidence,
        probabilities={got: 1.0} if got.is_condition else {},
        best_value=best if deserved.is_condition else None,
        got_value=value if deserved.is_condition else None,
    )


HAND = [
    verdict(A, A),
    verdict(A, A, family="shoe"),
    verdict(A, C, path=OPEN_BOX, value=70.0),  # a false alarm: 30 left on the table
    verdict(B, A, deserved_path=OPEN_BOX, best=60.0, value=20.0),  # sold as new, comes back: 40 left
    verdict(B, B, path=OPEN_BOX, deserved_path=OPEN_BOX, best=60.0, value=60.0),
    verdict(C, A, deserved_path=OPEN_BOX, best=30.0, value=-10.0),  # costly: 40 left
    verdict(C, C, path=REVIEW, deserved_path=OPEN_BOX, best=30.0, value=25.0),  # review at 5: 5 left
    verdict(D, B, path=REVIEW, deserved_path=OPEN_BOX, best=10.0, value=5.0, family="shoe"),  # costly, reviewed
    verdict(D, D, path=OPEN_BOX, deserved_path=OPEN_BOX, best=10.0, value=10.0),
    verdict(A, A, path=OPEN_BOX, best=100.0, value=120.0),  # above the best: counts as nothing left
    verdict(EMPTY, EMPTY, path=REVIEW, deserved_path=REVIEW),
]


def test_rates_follow_their_definitions_on_a_hand_built_case() -> None:
    s = summarise(HAND)
    assert s["renders"] == 11 and s["items"] == 10  # the empty bench is not an item
    assert s["grade_exact"] == 0.6  # AA AA BB CC DD AA
    assert s["costly_miss"] == 0.5  # C->A and D->B of 4 C/D items
    assert s["optimistic_miss"] == 0.5  # B->A of 2 B items
    assert s["false_alarm"] == 0.25  # A->C of 4 A items
    assert s["manual_review"] == 0.2
    assert s["disposition_agreement"] == 0.4  # AA, AA, BB, DD ways
    assert s["money_left"] == 30 + 40 + 40 + 5 + 5
    assert s["value_at_stake"] == 100 * 4 + 60 * 2 + 30 * 2 + 10 * 2
    assert s["money_left_share"] == round(120 / 600, 4)
    assert s["deserved"] == {"A": 4, "B": 2, "C": 2, "D": 2}
    assert s["empty_benches"] == {"renders": 1, "served_empty": 1}
    assert s["per_family"]["shoe"]["items"] == 2 and s["per_family"]["shoe"]["costly_miss"] == 1.0
    assert set(s["definitions"]) >= {"grade_exact", "costly_miss", "money_left", "calibration_error"}


def test_confusion_matrix_rows_are_deserved_and_columns_got() -> None:
    conf = summarise(HAND)["confusion"]
    levels, matrix = conf["levels"], conf["matrix"]
    assert levels == ["A", "B", "C", "D", "EMPTY"]
    assert matrix[levels.index("C")][levels.index("A")] == 1
    assert matrix[levels.index("A")][levels.index("C")] == 1
    assert sum(map(sum, matrix)) == len(HAND)


def test_the_model_card_shows_the_figures_beside_map() -> None:
    from inspector.training.card import render_card

    card = render_card({"version": "v1", "item_verdicts": {**summarise(HAND), "source": {"held_out": "0:11"}}})
    summary = card[card.index("## Summary") : card.index("## Training data")]
    assert "| grade exact (item-level, 10 items) | 60.0% |" in summary
    assert "| costly misses (deserves C/D, graded A/B) | 50.0% |" in summary
    verdicts = card[card.index("## Item-level verdicts") :]
    assert "| D | 0 | 1 | 0 | 1 | 0 |" in verdicts and "| shoe | 2 | 50.0% | 100.0% |" in verdicts
    assert "## Item-level verdicts" not in render_card({"version": "v1"})


def test_calibration_error_on_a_hand_built_case() -> None:
    cal = calibration([(0.95, True), (0.95, False), (0.15, False), (0.15, False)])
    # bin 0.9-1.0: confidence 0.95, right half the time; bin 0.1-0.2: confidence 0.15, never right
    assert cal["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.15)
    assert [b["count"] for b in cal["bins"]] == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert calibration([(0.75, True), (0.75, True), (0.75, True), (0.75, False)])["ece"] == pytest.approx(0.0)


def test_held_out_seeds_lie_beyond_every_dataset_image_seed() -> None:
    from inspector.data.synth.dataset import image_seed

    assert max(image_seed(s, i) for s in (1, 2, 424242) for i in range(0, 4000, 97)) < HELD_OUT_BASE
    assert parse_seeds("5:8") == range(5, 8)
    with pytest.raises(ValueError, match="A:B"):
        parse_seeds("8")


class Oracle:
    """A detector that sees each rendered item's true boxes, or (blind) only the item itself."""

    model_version = "oracle"

    def __init__(self, items: Sequence[BenchItem], *, blind: bool) -> None:
        self.class_names = default_labelmap().names
        seen = [truth_detections(it, self.class_names) for it in items]
        self.truth = {_digest(it): d.of_class(ITEM) if blind else d for it, d in zip(items, seen, strict=True)}

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self.truth[_digest(f)] for f in frames]


def _digest(x: BenchItem | Frame) -> str:
    return hashlib.sha1(x.image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def rendered() -> list[BenchItem]:
    # items 0..7: four carry defects (the render is deterministic)
    return list(held_out_items(range(8)))


def _judged(items: list[BenchItem], *, blind: bool) -> dict[str, object]:
    pipe = Pipeline(Oracle(items, blind=blind), rubric=load_rubrics(), policy=load_policy(), catalogue=load_catalogue())
    verdicts, _ = evaluate_items(items, settings_from([]), pipeline=pipe)
    return summarise(verdicts)


def test_a_detector_that_sees_the_truth_gets_every_grade_and_leaves_nothing(rendered: list[BenchItem]) -> None:
    s = _judged(rendered, blind=False)
    matrix = np.asarray(s["confusion"]["matrix"])  # type: ignore[index]
    assert matrix.sum() == len(rendered)
    assert s["grade_exact"] == 1.0 and s["money_left"] == 0.0 and s["disposition_agreement"] == 1.0
    assert np.count_nonzero(matrix - np.diag(np.diag(matrix))) == 0


def test_a_detector_blind_to_defects_grades_every_item_a(rendered: list[BenchItem]) -> None:
    s = _judged(rendered, blind=True)
    levels, matrix = s["confusion"]["levels"], np.asarray(s["confusion"]["matrix"])  # type: ignore[index]
    assert matrix.sum() == len(rendered)
    deserved = s["deserved"]
    for g in "ABCD":  # every row sums to the number of items that deserve its grade
        assert matrix[levels.index(g)].sum() == deserved[g]  # type: ignore[index]
    assert deserved["B"] + deserved["C"] + deserved["D"] > 0, "the rendered items should hold some damage"  # type: ignore[index]
    assert s["grade_exact"] == round(deserved["A"] / s["items"], 4)  # type: ignore[index,operator]
    assert s["money_left"] > 0  # type: ignore[operator]
    assert matrix[:4, 1:4].sum() == 0  # nothing graded B, C or D


def test_settings_overrides_reach_the_configuration() -> None:
    s = settings_from(["detector.confidence=0.1", "detector.backend=onnx"])
    assert s.detector.confidence == 0.1 and s.detector.backend == "onnx"
    with pytest.raises(ValueError):
        settings_from(["detector.nonsense=1"])


def test_cli_json_runs_end_to_end_on_a_rendered_dataset(rendered: list[BenchItem], tmp_path: Path) -> None:
    """A dataset folder as `inspector data synth` writes it (image, label, sidecar), judged by the active model."""
    from inspector.cli import app
    from inspector.data.formats.yolo import label_text

    for sub in ("images", "labels", "meta"):
        (tmp_path / sub / "test").mkdir(parents=True)
    for n, it in enumerate(rendered[:3]):
        h, w = it.image.shape[:2]
        cv2.imwrite(str(tmp_path / "images" / "test" / f"{n:06d}.jpg"), it.image)
        (tmp_path / "labels" / "test" / f"{n:06d}.txt").write_text(label_text(it.xyxy, it.class_ids, 6, w, h))
        (tmp_path / "meta" / "test" / f"{n:06d}.json").write_text(json.dumps(it.meta))
    res = CliRunner().invoke(
        app, ["evaluate", "--items", "--data", str(tmp_path), "--config", "detector.warmup=0", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{") :])
    assert out["renders"] == 3 and sum(map(sum, out["confusion"]["matrix"])) == 3
    assert out["model_version"] and out["source"]["dataset"] == str(tmp_path) and "definitions" in out
    assert "anomaly" in out  # which anomaly model judged, if any


@pytest.mark.parametrize("size", [(160, 120), (256, 192)])
def test_held_out_items_are_seen_at_the_camera_size_and_cached_per_size(size: tuple[int, int], tmp_path: Path) -> None:
    """Items are rendered at the camera's size, read back from the cache as rendered; each size keeps its own."""
    fresh = list(held_out_items(range(2), size=size))
    cached = list(held_out_items(range(2), cache=tmp_path, size=size))
    again = list(held_out_items(range(2), cache=tmp_path, size=size))  # read back, not rendered
    assert [it.image.shape[:2] for it in fresh] == [(size[1], size[0])] * 2
    assert sorted(p.name for p in (tmp_path / f"{size[0]}x{size[1]}").iterdir()) == [
        "0.jpg",
        "0.json",
        "1.jpg",
        "1.json",
    ]
    for a, b, c in zip(fresh, cached, again, strict=True):
        assert a.meta == b.meta == c.meta
        assert np.array_equal(b.image, c.image)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 1.0  # the same picture through JPEG
