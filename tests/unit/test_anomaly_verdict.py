"""Damage no detector class names: the anomaly model's regions that no detection explains, in the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.config import Settings
from inspector.disposition import load_catalogue, load_policy
from inspector.grading import grade_item, load_rubrics
from inspector.grading.base import CODE_UNEXPLAINED
from inspector.grading.loaders import RUBRICS_DIR
from inspector.items import ItemInfo
from inspector.pipeline import ANOMALY_CROP_MARGIN, Pipeline, build_pipeline, unexplained_regions
from inspector.types import AnomalyRegion, DispositionPath, Frame, GradeLevel, Inspection, ViewAnomaly
from tests.builders import MedianColourScorer, dets, item_photo
from tests.unit.test_pipeline import ITEM, ScriptedDetector

PHONE = ItemInfo(sku="PH-M250")  # a phone in the shipped catalogue
BLOTCH = (300, 200, 330, 230)  # 900 px: 0.9% of the 350 x 300 item


def inspect(
    rows: list[tuple[str, float, tuple[float, float, float, float]]],
    blotch: tuple[int, int, int, int] | None,
    *,
    min_area: float = 0.005,
    scorer: MedianColourScorer | None = None,
    item: ItemInfo = PHONE,
) -> Inspection:
    pipeline = Pipeline(
        ScriptedDetector(dets(rows)),
        rubric=load_rubrics(),
        policy=load_policy(),
        catalogue=load_catalogue(),
        anomaly=scorer or MedianColourScorer(),
        anomaly_min_area=min_area,
    )
    return pipeline.inspect([item_photo(blotch)], item, inspection_id="i-1")


def unexplained(inspection: Inspection) -> list[dict[str, Any]]:
    return [r.to_dict() for r in inspection.grade.reasons if r.code == CODE_UNEXPLAINED]


def test_a_blotch_no_detection_explains_caps_the_grade() -> None:
    clean = inspect([ITEM], None)
    assert clean.grade.level is GradeLevel.A and not unexplained(clean)
    assert clean.views[0].anomaly is not None and clean.views[0].anomaly.regions == ()

    found = inspect([ITEM], BLOTCH)
    reasons = unexplained(found)
    assert len(reasons) == 1
    params = reasons[0]["params"]
    assert params["area"] == pytest.approx(900 / (350 * 300), rel=0.01)
    assert params["score"] > params["threshold"] and params["view"] == 1 and params["review"] is False
    assert reasons[0]["text"].startswith("unexplained damage, 0.9% of the item, score ")
    assert found.grade.level is GradeLevel.B  # the rubric's cap
    region = found.views[0].anomaly.regions[0]  # type: ignore[union-attr]
    assert region.xyxy == (300.0, 200.0, 330.0, 230.0)  # in the view's pixels
    assert found.disposition.path is not DispositionPath.MANUAL_REVIEW
    assert "anomaly" in found.timings_ms


@pytest.mark.parametrize(
    ("detected", "expected"),
    [
        (("scratch", 0.9, (298.0, 198.0, 332.0, 232.0)), 0),  # the detector found it: not counted twice
        (("scratch", 0.9, (180.0, 120.0, 220.0, 160.0)), 1),  # a detection elsewhere explains nothing here
        (("scratch", 0.1, (298.0, 198.0, 332.0, 232.0)), 1),  # one too faint for the grader explains nothing
    ],
)
def test_detections_explain_their_own_box(
    detected: tuple[str, float, tuple[float, float, float, float]], expected: int
) -> None:
    assert len(unexplained(inspect([ITEM, detected], BLOTCH))) == expected


@pytest.mark.parametrize(
    ("blotch", "min_area", "expected"),
    [
        ((300, 200, 310, 210), 0.005, 0),  # 100 px, 0.1% of the item: below min_area
        ((300, 200, 310, 210), 0.0005, 1),
        (BLOTCH, 0.005, 1),
        (BLOTCH, 0.01, 0),
    ],
)
def test_min_area(blotch: tuple[int, int, int, int], min_area: float, expected: int) -> None:
    assert len(unexplained(inspect([ITEM], blotch, min_area=min_area))) == expected


def test_a_large_region_goes_to_a_person() -> None:
    found = inspect([ITEM], (250, 150, 330, 230))  # 6400 px: 6.1% of the item, over review_above_share 5%
    assert unexplained(found)[0]["params"]["review"] is True
    assert found.disposition.path is DispositionPath.MANUAL_REVIEW
    assert found.disposition.rule == "unexplained_damage"


def test_no_model_for_the_family_scores_nothing() -> None:
    scorer = MedianColourScorer(families=("laptop",))
    found = inspect([ITEM], BLOTCH, scorer=scorer)
    assert scorer.calls == 0 and found.views[0].anomaly is None and not unexplained(found)
    assert found.grade.level is GradeLevel.A


@pytest.mark.parametrize(
    ("threshold", "pixel_threshold", "expected"),
    [
        (60.0, None, 1),
        (200.0, 60.0, 1),  # the blotch scores about 258: the item is anomalous, its region cut at 60
        (300.0, 60.0, 0),  # below the item threshold: no region, whatever the pixels say
        (60.0, 300.0, 0),
    ],
)
def test_regions_only_on_an_anomalous_item_at_the_pixel_threshold(
    threshold: float, pixel_threshold: float | None, expected: int
) -> None:
    scorer = MedianColourScorer(threshold=threshold, pixel_threshold=pixel_threshold)
    assert len(unexplained(inspect([ITEM], BLOTCH, scorer=scorer))) == expected


def test_whole_frame_scored_when_no_item_box() -> None:
    found = inspect([], BLOTCH)
    anomaly = found.views[0].anomaly
    assert anomaly is not None and anomaly.crop == (0.0, 0.0, 640.0, 480.0)
    assert found.grade.level is GradeLevel.EMPTY  # no item: the grade says so whatever the model saw
    assert clean_crop() == (136.0, 88.0, 514.0, 412.0)  # with an item: its box grown by the models' margin


def clean_crop() -> tuple[float, float, float, float]:
    anomaly = inspect([ITEM], None).views[0].anomaly
    assert anomaly is not None
    return anomaly.crop


def test_the_crop_margin_is_the_one_the_models_learned_from() -> None:
    from inspector.anomaly.features import CROP_MARGIN  # torch: imported by this test only

    assert ANOMALY_CROP_MARGIN == CROP_MARGIN


def rubrics_capped_at(folder: Path, cap: str) -> Path:
    """A copy of the shipped rubrics whose unexplained damage caps the grade at ``cap``."""
    for f in RUBRICS_DIR.glob("*.yaml"):
        (folder / f.name).write_text(f.read_text())
    index = folder / "rubric.yaml"
    index.write_text(index.read_text().replace("  cap: B\n", f"  cap: {cap}\n"))
    return folder


def test_the_rubric_sets_the_cap(tmp_path: Path) -> None:
    anomaly = ViewAnomaly(
        score=0.9,
        threshold=0.5,
        family="phone",
        model_version="m",
        crop=(0, 0, 10, 10),
        regions=(AnomalyRegion(xyxy=(1, 1, 3, 3), share=0.02, peak=0.9),),
    )
    views = [dets([ITEM])]
    graded = {
        cap: grade_item(views, rubric=rubric, anomalies=[anomaly]).level
        for cap, rubric in (("B", load_rubrics()), ("C", load_rubrics(rubrics_capped_at(tmp_path, "C"))))
    }
    assert graded == {"B": GradeLevel.B, "C": GradeLevel.C}
    probs = grade_item(views, rubric=load_rubrics(), anomalies=[anomaly]).probabilities
    assert probs[GradeLevel.A] == pytest.approx(0.2)  # the region is real with the rubric's probability 0.8


def test_a_cap_of_a_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unexplained_damage\.cap"):
        load_rubrics(rubrics_capped_at(tmp_path, "A"))


def test_regions_of_a_map() -> None:
    heat = np.zeros((100, 200), np.float32)
    heat[10:20, 10:30] = 2.0  # 200 px, 1% of the map
    heat[50:60, 150:160] = 3.0  # 100 px, inside an explained box
    heat[90:100, 0:10] = 4.0  # 100 px, off the item when the item is (0, 0)-(100, 80)
    explained = [(152.0, 52.0, 158.0, 58.0)]
    assert unexplained_regions(heat, 1.0, explained, 0.001) == [
        ((0, 90, 10, 100), 0.005, 4.0),
        ((10, 10, 30, 20), 0.01, 2.0),
    ]
    assert unexplained_regions(heat, 1.0, explained, 0.001, (0.0, 0.0, 100.0, 80.0)) == [
        ((10, 10, 30, 20), 0.025, 2.0)  # a share of the item's 8,000 px
    ]


def test_missing_anomaly_model_serves_without_it(tmp_path: Path) -> None:
    settings = Settings.model_validate({"anomaly": {"model": str(tmp_path / "nowhere")}})
    pipeline = build_pipeline(settings, detector=ScriptedDetector(dets([ITEM])))
    status = pipeline.anomaly_status
    assert status["served"] is False and status["detail"].startswith("anomaly model not loaded: ")
    assert pipeline.inspect([item_photo(BLOTCH)], PHONE, inspection_id="i-2").grade.level is GradeLevel.A


@pytest.mark.slow
def test_a_real_model_boxes_the_burn_no_detection_explains() -> None:
    """The tiny PatchCore of the anomaly models' tests, served: a rendered burn is unexplained damage."""
    from inspector.data.synth import Bench
    from tests.unit.test_anomaly_models import FAMILY, tiny

    model = tiny.__wrapped__()  # type: ignore[attr-defined]
    hurt, clean = model.model.score(model.damaged, FAMILY).score, model.model.score(model.twin, FAMILY).score
    mid = (hurt + clean) / 2
    served = model.model.with_thresholds({FAMILY: {"threshold": mid, "pixel_threshold": mid}})
    r = Bench(203).render(3, family=FAMILY, defect_free=True, unknown=("burn",), with_clean=True)
    assert r.clean is not None
    item = ("item", 0.95, tuple(float(v) for v in r.meta["item"]["box"]))
    burn = tuple(float(v) for v in r.meta["unknown"][0]["box"])

    def regions(image: np.ndarray[Any, Any], rows: list[Any]) -> list[AnomalyRegion]:
        pipeline = Pipeline(
            ScriptedDetector(dets(rows)),
            rubric=load_rubrics(),
            policy=load_policy(),
            catalogue=load_catalogue(),
            anomaly=served,
        )
        frame = Frame(image=np.ascontiguousarray(image), camera_id="cam0")
        found = pipeline.inspect([frame], ItemInfo(category=FAMILY), inspection_id="i-3").views[0].anomaly
        assert found is not None
        return list(found.regions)

    on_burn = regions(r.image, [item])
    assert on_burn, "the burn is found"
    x1, y1, x2, y2 = on_burn[0].xyxy
    assert x1 < burn[2] and burn[0] < x2 and y1 < burn[3] and burn[1] < y2  # where the burn is
    assert regions(r.clean, [item]) == []  # its clean twin
    assert regions(r.image, [item, ("stain", 0.9, burn)]) == []  # a detection explains it


def test_views_with_unexplained_damage_are_sampled_for_labelling() -> None:
    from inspector.config import SamplingConfig
    from inspector.feedback.sampling import sample
    from tests.feedback.builders import det, insp

    records = [insp(f"s{i}", views=[[det("item", 0.9), det("scratch", 0.9)]]) for i in range(20)]
    odd = insp("u", views=[[det("item", 0.9), det("scratch", 0.9)]])
    odd["views"][0]["anomaly"] = {"regions": [{"xyxy": [1, 1, 9, 9], "share": 0.02, "peak": 0.9}]}
    cfg = SamplingConfig(random_per_day=0, disagreement_per_day=5, seed=1)
    picked = sample([*records, odd], cfg, threshold=0.25)
    assert [(c.inspection_id, c.reasons, c.detail.get("unexplained_regions")) for c in picked] == [
        ("u", ("unexplained_damage",), 1)
    ]
