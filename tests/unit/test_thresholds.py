"""Per-class operating points chosen by cost, served from the card, and the blind-spot prior they carry."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from inspector.config import DetectorConfig, RegistryConfig, Settings
from inspector.detect.operating import (
    META_KEY,
    OperatingPoints,
    OperatingPointsError,
    ThresholdedDetector,
    from_meta,
    keep_by_class,
    read_override,
)
from inspector.disposition import load_catalogue, load_policy
from inspector.grading import load_rubrics
from inspector.grading.assessment import assess_item, condition_probabilities
from inspector.grading.blindspots import BlindSpots, Hidden
from inspector.items import ItemInfo
from inspector.labelmap import default_labelmap
from inspector.metrics import Truth
from inspector.pipeline import Pipeline, serving_operating_points
from inspector.training.card import render_card
from inspector.training.thresholds import Costs, SplitRun, base_rates, choose, load_costs, record
from inspector.types import DispositionPath, GradeLevel
from tests.builders import dets
from tests.unit.test_pipeline import ITEM, ScriptedDetector, photo

NAMES = default_labelmap().names
SMALL_CRACK = ("crack", 0.2, (200.0, 150.0, 260.0, 200.0))  # on the item, 0.2 confidence
PHONE = ItemInfo(sku="PH-M250")
CARD_RECORD: dict[str, Any] = {
    "classes": {"crack": {"threshold": 0.15, "recall": 0.3}, "dent": {"threshold": 0.4, "recall": 0.05}},
    "base_rate": {"phone": {"crack": 0.36, "dent": 0.28}, "all": {"crack": 0.13, "dent": 0.12}},
}


def pipeline(detector: Any, blind_spots: bool = True) -> Pipeline:
    return Pipeline(
        detector, rubric=load_rubrics(), policy=load_policy(), catalogue=load_catalogue(), blind_spots=blind_spots
    )


def test_a_class_is_kept_from_its_own_threshold() -> None:
    raw = dets([ITEM, SMALL_CRACK, ("stain", 0.2, (300.0, 300.0, 320.0, 320.0))])
    kept = keep_by_class(raw, {"crack": 0.15}, 0.25)
    assert [NAMES[c] for c in kept.class_id] == ["item", "crack"], "stain has no threshold of its own: 0.25"
    assert len(keep_by_class(raw, {}, 0.25)) == 1


def test_the_cost_chosen_threshold_changes_the_verdict() -> None:
    """A crack seen at 0.2 is dropped at the single 0.25 but graded at its own 0.15."""
    raw = dets([ITEM, SMALL_CRACK])
    single = pipeline(ThresholdedDetector(ScriptedDetector(raw), OperatingPoints(thresholds={}), 0.25))
    own = pipeline(ThresholdedDetector(ScriptedDetector(raw), OperatingPoints(thresholds={"crack": 0.15}), 0.25))
    before = single.inspect([photo()], PHONE, inspection_id="a")
    after = own.inspect([photo()], PHONE, inspection_id="b")
    assert before.grade.probabilities[GradeLevel.A] == pytest.approx(1.0)
    assert after.grade.probabilities[GradeLevel.C] == pytest.approx(0.2, abs=1e-6), "the crack is real with 0.2"
    assert before.disposition.path is DispositionPath.RESTOCK
    assert after.disposition.path is not DispositionPath.RESTOCK
    assert len(after.views[0].detections) == 2, "the kept crack is reported on the view"


def test_the_blind_spot_prior_moves_a_clean_looking_item_off_restock() -> None:
    ops = from_meta({META_KEY: CARD_RECORD}, "v1")
    assert ops is not None and ops.has_blind_spots
    clean = dets([ITEM])
    off = pipeline(ThresholdedDetector(ScriptedDetector(clean), ops, 0.25), blind_spots=False).inspect(
        [photo()], PHONE, inspection_id="a"
    )
    on = pipeline(ThresholdedDetector(ScriptedDetector(clean), ops, 0.25)).inspect([photo()], PHONE, inspection_id="b")
    assert off.grade.probabilities[GradeLevel.A] == pytest.approx(1.0)
    # phone: crack 0.36 x 0.7 / (1 - 0.36 x 0.3) = 0.2825 (least severe step C); dent 0.28 x 0.95 / (1 - 0.014) (B)
    p_crack = 0.36 * 0.7 / (1 - 0.36 * 0.3)
    p_dent = 0.28 * 0.95 / (1 - 0.28 * 0.05)
    assert on.grade.probabilities[GradeLevel.C] == pytest.approx(p_crack, abs=1e-6)
    assert on.grade.probabilities[GradeLevel.A] == pytest.approx((1 - p_crack) * (1 - p_dent), abs=1e-6)
    assert off.disposition.path is DispositionPath.RESTOCK
    assert on.disposition.path is not DispositionPath.RESTOCK
    assert any(r.code == "blind_spot" for r in on.grade.reasons)


def test_hidden_defects_enter_the_probabilities_as_independent_events() -> None:
    rubric = load_rubrics()
    category = rubric.for_category("phone")
    empty = assess_item([dets([ITEM])], rubric=rubric, category=category)
    probs = condition_probabilities(empty, category, (Hidden("scratch", 0.3, 1.0), Hidden("crack", 0.1, 2.0)))
    assert probs[GradeLevel.A] == pytest.approx(0.7 * 0.9)
    assert probs[GradeLevel.B] == pytest.approx(0.3 * 0.9)
    assert probs[GradeLevel.C] == pytest.approx(0.1)
    blind = BlindSpots(recall={"dent": 0.5}, base_rate={"all": {"dent": 0.2}})
    assert blind.missed("shoe", "dent") == pytest.approx(0.1 / 0.9), "no shoe rates: the rates of all families"
    assert blind.missed("shoe", "crack") == 0.0, "no recall measured: no prior"


def _registry(tmp_path: Path, record: Any) -> Settings:
    root = tmp_path / "models"
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "meta.json").write_text(json.dumps({"version": "v1", META_KEY: record}))
    return Settings(registry=RegistryConfig(root=root))


def test_operating_points_load_from_the_card_and_an_override_file(tmp_path: Path) -> None:
    settings = _registry(tmp_path, CARD_RECORD)
    card = serving_operating_points(settings, "v1")
    assert card is not None and dict(card.thresholds) == {"crack": 0.15, "dent": 0.4} and card.warning is None
    override = tmp_path / "thresholds.json"
    override.write_text(json.dumps({"classes": {"crack": {"threshold": 0.1}}}))
    settings.detector = DetectorConfig(thresholds_file=override)
    merged = serving_operating_points(settings, "v1")
    assert merged is not None and dict(merged.thresholds) == {"crack": 0.1, "dent": 0.4}
    assert merged.recall == card.recall, "the file gives no recall: the card's stays"


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"classes": {"crack": {"threshold": 7}}})])
def test_a_missing_or_corrupt_threshold_file_keeps_the_card(
    tmp_path: Path, content: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _registry(tmp_path, CARD_RECORD)
    path = tmp_path / "thresholds.json"
    if content is not None:
        path.write_text(content)
    settings.detector = DetectorConfig(thresholds_file=path)
    with caplog.at_level(logging.ERROR, logger="inspector.pipeline"):
        ops = serving_operating_points(settings, "v1")
    assert ops is not None and dict(ops.thresholds) == {"crack": 0.15, "dent": 0.4}
    assert ops.warning is not None and str(path) in ops.warning
    assert any(str(path) in r.getMessage() for r in caplog.records)
    with pytest.raises(OperatingPointsError, match=str(path)):
        read_override(path)
    # the station keeps serving and says so in its readiness check
    from inspector.api.routes.ops import readiness

    pipe = pipeline(ThresholdedDetector(ScriptedDetector(dets([ITEM, SMALL_CRACK])), ops, 0.25))
    assert pipe.inspect([photo()], PHONE, inspection_id="a").grade.probabilities[GradeLevel.C] > 0
    store = SimpleNamespace(
        db=SimpleNamespace(ping=lambda: None, dialect="sqlite"),
        images=SimpleNamespace(check_writable=lambda: None, location="mem"),
        disk_paths=lambda: [],
    )
    body = readiness(store, SimpleNamespace(pipeline=pipe, error=None))  # type: ignore[arg-type]
    assert body["ready"] and str(path) in body["checks"]["model"]["detail"]


def test_thresholds_are_chosen_by_cost() -> None:
    """Four images, one true crack each: found at 0.3 (at 0.15 in one), false cracks on the item at 0.2 and 0.35."""
    run = SplitRun()
    item, crack = (0.0, 0.0, 100.0, 100.0), (10.0, 10.0, 30.0, 30.0)
    truth = Truth(xyxy=np.array([item, crack], np.float64), class_id=np.array([0, NAMES.index("crack")]))
    for k in range(4):
        rows = [
            ("crack", 0.15 if k == 0 else 0.3, crack),
            ("crack", 0.2, (60.0, 60.0, 80.0, 80.0)),
            ("crack", 0.35, (40.0, 60.0, 55.0, 80.0)),
            ("crack", 0.5, (200.0, 0.0, 220.0, 20.0)),  # off the item: the grader ignores it
        ]
        run.add(dets(rows), truth, NAMES, ("phone", "all"))

    def chosen(cost_miss: float) -> dict[str, Any]:
        return dict(choose(run, Costs(miss={"default": cost_miss}, false_alarm={"default": 1.0}), 0.05)["crack"])

    # cost at t <= 0.15: 8 false alarms; 0.21..0.3: 4 + 1 miss; above 0.35: 4 misses (ties: the higher t)
    assert (chosen(8.0)["threshold"], chosen(8.0)["recall"], chosen(8.0)["false_alarms"]) == (0.15, 1.0, 8)
    assert (chosen(2.0)["threshold"], chosen(2.0)["recall"]) == (0.3, 0.75)
    assert chosen(0.5)["recall"] == 0.0 and chosen(0.5)["threshold"] > 0.5
    assert base_rates(run)["phone"]["crack"] == 1.0 and base_rates(run)["all"]["dent"] == 0.0
    rec = record(run, load_costs(), 0.05, {"name": "tiny"}, "val")
    assert from_meta({META_KEY: rec}, "v") is not None
    card = render_card({"version": "v", META_KEY: rec})
    assert "## Operating points" in card and "| crack |" in card


def test_a_bad_costs_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "costs.yaml"
    bad.write_text("cost_miss: {crack: -1}\ncost_false: {default: 1}\n")
    with pytest.raises(ValueError, match="cost_miss"):
        load_costs(bad)


class SizeRecorder(ScriptedDetector):
    """Scripted detections (frame coordinates of a 1280x960 frame), and the size of every frame it was shown."""

    def __init__(self, result: Any) -> None:
        super().__init__(result)
        self.sizes: list[tuple[int, int]] = []

    def detect(self, frames: Any) -> list[Any]:
        self.sizes += [(f.width, f.height) for f in frames]
        return super().detect(frames)


@pytest.mark.parametrize(("tiling", "tiled"), [("off", False), ("item", True)])
def test_operating_points_are_chosen_on_the_view_the_station_serves(
    tiling: str, tiled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chosen with tiling, the served version's detector runs on native tiles too, and the record says so."""
    import shutil

    import cv2

    from inspector import registry
    from inspector.training import thresholds

    served = registry.active_version()
    assert served is not None
    shutil.copytree(registry.version_dir(served), tmp_path / "models" / served)
    ds = tmp_path / "ds"
    for sub in ("images/val", "labels/val"):
        (ds / sub).mkdir(parents=True)
    cv2.imwrite(str(ds / "images/val/0.jpg"), np.full((960, 1280, 3), 128, np.uint8))
    (ds / "labels/val/0.txt").write_text("0 0.5 0.5 0.6 0.6\n3 0.5 0.5 0.05 0.05\n", encoding="utf-8")
    (ds / "data.yaml").write_text(
        "train: images/val\nval: images/val\nnames:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES)),
        encoding="utf-8",
    )
    fake = SizeRecorder(
        dets([("item", 0.9, (260.0, 200.0, 1020.0, 760.0)), ("crack", 0.6, (610.0, 450.0, 670.0, 510.0))])
    )
    monkeypatch.setattr(thresholds, "load_detector", lambda *a, **k: fake)
    rec = thresholds.choose_for_version(served, ds / "data.yaml", root=tmp_path / "models", tiling=tiling)  # type: ignore[arg-type]
    assert rec["tiling"] == tiling
    assert fake.sizes[0] == (1280, 960)
    assert ((640, 480) in fake.sizes) is tiled
    assert rec["classes"]["crack"]["truths"] == 1
