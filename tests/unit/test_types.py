from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from inspector.types import (
    Detections,
    Disposition,
    DispositionPath,
    Frame,
    Grade,
    GradeLevel,
    Inspection,
    ValidationError,
    View,
)
from tests.builders import dets, frame

NAMES = ("item", "scratch", "dent")


def make(n: int) -> Detections:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    wh = rng.uniform(1, 50, (n, 2)).astype(np.float32)
    return Detections(
        xyxy=np.concatenate([xy, xy + wh], axis=1),
        confidence=rng.uniform(0, 1, n).astype(np.float32),
        class_id=rng.integers(0, 3, n),
        class_names=NAMES,
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((48, 64), np.uint8), "HxWx3"),
        (np.zeros((48, 64, 4), np.uint8), "HxWx3"),
        (np.zeros((48, 64, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 3), np.uint8), "too small"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_frame_rejects_bad_images(image: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Frame(image=image)  # type: ignore[arg-type]


def test_frame_requires_aware_time_and_camera() -> None:
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValidationError, match="timezone"):
        Frame(image=img, captured_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="camera_id"):
        Frame(image=img, camera_id="")
    f = frame(64, 48)
    assert (f.width, f.height) == (64, 48)
    assert f.size == (64, 48) and f.to_full(make(3)).xyxy.tolist() == make(3).xyxy.tolist()


def test_a_frame_decoded_smaller_reports_boxes_on_the_full_picture() -> None:
    f = Frame(image=np.zeros((48, 64, 3), np.uint8), full_size=(128, 144))
    assert (f.width, f.height) == (64, 48) and f.size == (128, 144)
    d = make(4)
    full = f.to_full(d)
    assert np.allclose(full.xyxy, d.xyxy * np.array([2, 3, 2, 3], np.float32))
    assert full.confidence.tolist() == d.confidence.tolist() and full.class_id.tolist() == d.class_id.tolist()
    with pytest.raises(ValidationError, match="smaller than the image"):
        Frame(image=np.zeros((48, 64, 3), np.uint8), full_size=(32, 48))


@pytest.mark.parametrize(
    ("xyxy", "conf", "cls", "message"),
    [
        (np.zeros((2, 3)), np.zeros(2), np.zeros(2), r"\(N, 4\)"),
        (np.zeros((2, 4)), np.zeros(3), np.zeros(2), "misaligned"),
        (np.zeros((2, 4)), np.zeros(2), np.zeros(1), "misaligned"),
        (np.array([[5, 0, 1, 1]]), np.zeros(1), np.zeros(1), "x1 <= x2"),
        (np.array([[0, 0, 1, 1]]), np.array([1.5]), np.zeros(1), r"\[0, 1\]"),
        (np.array([[0, 0, 1, 1]]), np.array([0.5]), np.array([7]), "class_id out of range"),
        (np.array([[0, 0, np.nan, 1]]), np.array([0.5]), np.array([0]), "finite"),
    ],
)
def test_detections_validate_shapes(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Detections(xyxy=xyxy, confidence=conf, class_id=cls, class_names=NAMES)


def test_empty_detections() -> None:
    e = Detections.empty(NAMES)
    assert len(e) == 0
    assert e.xyxy.shape == (0, 4)
    assert e.class_names == NAMES
    assert len(e[e.confidence > 0.5]) == 0
    assert e.to_records() == []


def test_boolean_mask_keeps_columns_aligned() -> None:
    d = make(20)
    mask = d.confidence > 0.5
    sub = d[mask]
    assert len(sub) == int(mask.sum())
    np.testing.assert_array_equal(sub.xyxy, d.xyxy[mask])
    np.testing.assert_array_equal(sub.class_id, d.class_id[mask])
    np.testing.assert_array_equal(sub.confidence, d.confidence[mask])
    assert sub.class_names == NAMES


@pytest.mark.parametrize("index", [0, slice(2, 5), [4, 1], np.array([3, 3])])
def test_integer_and_slice_indexing(index: object) -> None:
    d = make(6)
    sub = d[index]  # type: ignore[index]
    expected = d.xyxy[[index] if isinstance(index, int) else index]  # type: ignore[index]
    np.testing.assert_array_equal(sub.xyxy, expected)


def test_wrong_mask_length_is_refused() -> None:
    d = make(5)
    with pytest.raises(ValidationError, match="mask"):
        d[np.ones(4, dtype=bool)]


def test_rows_names_area_and_class_filter() -> None:
    d = dets([("scratch", 0.9, (0, 0, 10, 5)), ("item", 0.8, (0, 0, 100, 100)), ("dent", 0.4, (1, 1, 3, 3))])
    assert d.names == ["scratch", "item", "dent"]
    np.testing.assert_allclose(d.area, [50, 10000, 4])
    assert d.of_class("scratch", "dent").names == ["scratch", "dent"]
    assert len(d.of_class("unknown")) == 0
    row = d.row(0)
    assert row.class_name == "scratch" and row.xyxy == (0.0, 0.0, 10.0, 5.0)
    assert [r["class_name"] for r in d.to_records()] == ["scratch", "item", "dent"]


def test_merge_requires_same_labelmap() -> None:
    a, b = make(3), make(4)
    assert len(Detections.merge([a, b])) == 7
    other = Detections.empty(("x",))
    with pytest.raises(ValidationError, match="labelmaps"):
        Detections.merge([a, other])


def test_grade_probabilities_must_sum_to_one() -> None:
    g = Grade(level=GradeLevel.B, probabilities={GradeLevel.A: 0.2, GradeLevel.B: 0.8})
    assert g.confidence == pytest.approx(0.8)
    with pytest.raises(ValidationError, match="sum to 1"):
        Grade(level=GradeLevel.B, probabilities={GradeLevel.A: 0.2, GradeLevel.B: 0.5})
    assert Grade.certain(GradeLevel.EMPTY).to_dict()["probabilities"] == {"EMPTY": 1.0}


def test_grade_order() -> None:
    assert [g.rank for g in (GradeLevel.A, GradeLevel.B, GradeLevel.C, GradeLevel.D)] == [0, 1, 2, 3]
    assert GradeLevel.A.is_condition and not GradeLevel.EMPTY.is_condition


def test_inspection_needs_views_and_id() -> None:
    grade = Grade.certain(GradeLevel.A)
    disp = Disposition(path=DispositionPath.RESTOCK, expected_value=10.0)
    view = View(frame=frame(), detections=dets([]))
    ok = Inspection(id="i1", views=(view,), grade=grade, disposition=disp, model_version="m")
    assert ok.disposition.to_dict()["path"] == "RESTOCK"
    with pytest.raises(ValidationError, match="at least one view"):
        Inspection(id="i1", views=(), grade=grade, disposition=disp, model_version="m")
    with pytest.raises(ValidationError, match="id"):
        Inspection(id="", views=(view,), grade=grade, disposition=disp, model_version="m")
