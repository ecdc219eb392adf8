"""The pipeline wires real grading and disposition behind any detector."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from inspector.config import Settings
from inspector.disposition import load_catalogue, load_policy
from inspector.grading import load_rubrics
from inspector.items import ItemInfo
from inspector.pipeline import InspectionPipeline, Pipeline, PipelineError, build_pipeline
from inspector.types import Detections, DispositionPath, Frame, GradeLevel
from tests.builders import dets


class ScriptedDetector:
    """Returns the same detections for every frame: the pipeline under test is everything after the model."""

    def __init__(self, result: Detections) -> None:
        self.result = result
        self.calls = 0

    @property
    def model_version(self) -> str:
        return "scripted-1"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.result.class_names

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        self.calls += 1
        return [self.result for _ in frames]


def photo() -> Frame:
    """A textured, well-lit frame that passes the quality gate."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(40, 200, (480, 640, 3), dtype=np.uint8), (3, 3), 0)
    cv2.rectangle(img, (150, 100), (500, 400), (210, 210, 210), -1)
    cv2.putText(img, "RMA-1234", (200, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 20), 3)
    return Frame(image=img, camera_id="cam0")


def make_pipeline(result: Detections) -> Pipeline:
    return Pipeline(ScriptedDetector(result), rubric=load_rubrics(), policy=load_policy(), catalogue=load_catalogue())


ITEM = ("item", 0.95, (150.0, 100.0, 500.0, 400.0))


@pytest.mark.parametrize(
    ("rows", "item", "grade", "paths"),
    [
        ([ITEM], ItemInfo(sku="PH-M250"), GradeLevel.A, {DispositionPath.RESTOCK, DispositionPath.OPEN_BOX}),
        ([], ItemInfo(sku="PH-M250"), GradeLevel.EMPTY, None),
        (
            [ITEM, ("crack", 0.9, (200.0, 150.0, 450.0, 350.0))],
            ItemInfo(sku="PH-M250"),
            None,
            None,
        ),
        (
            [ITEM],
            ItemInfo(sku="PH-M250", flags=frozenset({"battery_swollen"})),
            None,
            {DispositionPath.HAZARDOUS_DISPOSAL},
        ),
    ],
)
def test_inspect_runs_every_stage(
    rows: list[tuple[str, float, tuple[float, float, float, float]]],
    item: ItemInfo,
    grade: GradeLevel | None,
    paths: set[DispositionPath] | None,
) -> None:
    pipe = make_pipeline(dets(rows))
    assert isinstance(pipe, InspectionPipeline)
    result = pipe.inspect([photo(), photo()], item, inspection_id="abc", station_id="bench-7")
    assert result.id == "abc" and result.station_id == "bench-7"
    assert len(result.views) == 2
    assert result.model_version == "scripted-1"
    assert result.disposition.policy_version == pipe.policy_version
    assert result.grade.rubric_version == pipe.rubric_version
    assert set(result.timings_ms) >= {"detect", "grade", "disposition", "pipeline"}
    if grade is not None:
        assert result.grade.level == grade
    if paths is not None:
        assert result.disposition.path in paths
    assert result.item["catalogue"]["sku"] == "PH-M250"


def test_crack_grades_worse_than_clean() -> None:
    clean = make_pipeline(dets([ITEM])).inspect([photo()], ItemInfo(sku="PH-M250"), inspection_id="a")
    cracked = make_pipeline(dets([ITEM, ("crack", 0.9, (200.0, 150.0, 450.0, 350.0))])).inspect(
        [photo()], ItemInfo(sku="PH-M250"), inspection_id="b"
    )
    assert cracked.grade.level.rank > clean.grade.level.rank
    assert any("crack" in r.text for r in cracked.grade.reasons)


def test_dark_view_is_unreadable() -> None:
    dark = Frame(image=np.full((480, 640, 3), 3, np.uint8))
    result = make_pipeline(dets([ITEM])).inspect([dark], ItemInfo(), inspection_id="d")
    assert result.grade.level == GradeLevel.UNREADABLE


def test_policy_swap_is_stamped() -> None:
    pipe = make_pipeline(dets([ITEM]))
    new = load_policy().model_copy(update={"version": "test-policy-2"})
    pipe.set_policy(new)
    assert (
        pipe.inspect([photo()], ItemInfo(sku="PH-M250"), inspection_id="p").disposition.policy_version
        == "test-policy-2"
    )


def test_inspect_needs_frames() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        make_pipeline(dets([ITEM])).inspect([], ItemInfo(), inspection_id="e")


def test_build_pipeline_without_a_model_says_why(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("INSPECTOR_MODELS_DIR", str(tmp_path))
    with pytest.raises(PipelineError, match="no active model"):
        build_pipeline(Settings())


class ScriptedFamily:
    def __init__(self, family: str, confidence: float) -> None:
        self.answer = (family, confidence)
        self.boxes: list[tuple[float, float, float, float]] = []

    def predict(self, image: object, box: tuple[float, float, float, float]):  # type: ignore[no-untyped-def]
        from inspector.grading import FamilyPrediction

        self.boxes.append(box)
        return FamilyPrediction(family=self.answer[0], confidence=self.answer[1])


@pytest.mark.parametrize(
    ("family", "confidence", "wrong"), [("shoe", 0.97, True), ("phone", 0.97, False), ("shoe", 0.2, False)]
)
def test_family_classifier_flags_a_wrong_item(family: str, confidence: float, wrong: bool) -> None:
    scripted = ScriptedFamily(family, confidence)
    pipe = Pipeline(
        ScriptedDetector(dets([ITEM])),
        rubric=load_rubrics(),
        policy=load_policy(),
        catalogue=load_catalogue(),
        family=scripted,
    )
    result = pipe.inspect([photo()], ItemInfo(sku="PH-M250"), inspection_id="w")
    assert scripted.boxes == [ITEM[2]]
    assert (result.grade.level == GradeLevel.WRONG_ITEM) is wrong


def test_warm_up_runs_the_detector_on_blank_frames_of_the_camera_size() -> None:
    from inspector.detect import warm_up

    seen: list[tuple[int, ...]] = []

    class Counting:
        model_version = "count-1"
        class_names = ("item",)

        def detect(self, frames: Sequence[Frame]) -> list[Detections]:
            seen.extend(f.image.shape for f in frames)
            assert not any(f.image.any() for f in frames), "a blank frame: nothing to find"
            return [dets([]) for _ in frames]

    assert warm_up(Counting(), (640, 480), runs=3) >= 0.0
    assert seen == [(480, 640, 3)] * 3
    warm_up(Counting(), (64, 48), runs=0)
    assert len(seen) == 3
