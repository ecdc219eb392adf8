"""Every exported backend (ONNX Runtime and OpenVINO, fp32 and int8) serves what PyTorch serves.

The shipped default model runs on synthetic bench frames: the same boxes (IoU), the same
classes, confidences within a tolerance per precision. fp32 graphs differ from PyTorch only
by operator order; int8 ones by quantisation, so their tolerance is wider and stated here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspector import registry
from inspector.config import DetectorConfig
from inspector.data.synth import render_sample
from inspector.detect import load_detector
from inspector.detect.base import DetectorError
from inspector.detect.openvino import OpenVinoDetector
from inspector.detect.yolo import UltralyticsDetector
from inspector.metrics import Truth, ap_closed_to_full_recall, ap_zero_past_last_recall, map50
from inspector.training import artifacts
from inspector.training.evaluate import read_yolo_labels
from inspector.training.parity import compare
from inspector.types import Detections, Frame

# (backend, confidence tolerance, minimum IoU of matched boxes)
TOLERANCES = [
    ("onnx", 2e-3, 0.99),
    ("openvino", 2e-3, 0.99),
    ("openvino-int8", 0.15, 0.9),  # measured with the 640 px model: 0.021 and IoU 0.938 (mean 0.986)
    # measured: 0.017 and IoU 0.903 (mean 0.977) with bench-det-finish-20261202-0226; 0.040 and IoU 0.863
    # (mean 0.967) with bench-det-finish-20261202-1515. A broken export matches nothing, far below either.
    ("onnx-int8", 0.15, 0.85),
]
CONF = 0.25
CALIBRATION = 64  # 24 left the int8 graphs a borderline box (0.21 vs 0.25 in PyTorch) with the 640 px model


@pytest.fixture(scope="module")
def shipped(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A copy of the active shipped weights (artefacts land beside the copy, not in models/) and its imgsz."""
    root = repo_root / "models"
    version = registry.active_version(root)
    if version is None:
        pytest.skip("no model promoted in models/ yet (make model)")
    weights = root / version / "weights.pt"
    imgsz = int(registry.serving_hints(version, root).get("imgsz", 640))
    copy = tmp_path_factory.mktemp("shipped") / "weights.pt"
    shutil.copyfile(weights, copy)
    return copy, imgsz


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    """Bench frames at the camera's 4:3, rendered with seeds of their own."""
    return [Frame(image=render_sample(70_000 + i, size=(640, 480)).image) for i in range(8)]


@pytest.fixture(scope="module")
def reference(shipped: tuple[Path, int], frames: list[Frame]) -> list[Detections]:
    weights, imgsz = shipped
    det = UltralyticsDetector(weights, imgsz=imgsz, confidence=CONF / 2)
    return [det.detect([f])[0] for f in frames]


@pytest.fixture(scope="module")
def built(shipped: tuple[Path, int]) -> dict[str, Path]:
    """Every artefact for the 4:3 shape, int8 calibrated on a few bench renders to keep the suite quick."""
    weights, imgsz = shipped
    shape = artifacts.export_shape(imgsz, 4 / 3)
    calib = [render_sample(80_000 + i, size=(640, 480)).image for i in range(CALIBRATION)]
    return {b: artifacts.ensure(weights, b, shape, threads=None, calibration=lambda: calib) for b in artifacts.BACKENDS}


@pytest.mark.parametrize(("backend", "conf_tol", "iou_min"), TOLERANCES)
def test_exported_backend_matches_pytorch_on_bench_frames(
    backend: str,
    conf_tol: float,
    iou_min: float,
    shipped: tuple[Path, int],
    built: dict[str, Path],
    frames: list[Frame],
    reference: list[Detections],
) -> None:
    _, imgsz = shipped
    det = load_detector(DetectorConfig(backend=backend, imgsz=imgsz, confidence=CONF / 2), built[backend], "v")
    ours = [det.detect([f])[0] for f in frames]
    assert all(d.class_names == reference[0].class_names for d in ours)
    parity = compare(reference, ours, CONF, conf_tolerance=conf_tol, iou_tolerance=iou_min)
    assert parity["matched"] >= len(frames), parity  # the shipped model finds at least the item in every frame
    assert parity["ok"], json.dumps(parity)


def test_openvino_runs_several_views_at_once_with_the_same_answer(
    shipped: tuple[Path, int], built: dict[str, Path], frames: list[Frame]
) -> None:
    one = OpenVinoDetector(built["openvino"], confidence=CONF)
    two = OpenVinoDetector(built["openvino"], confidence=CONF, streams=2, threads=2)
    singles = [one.detect([f])[0] for f in frames]
    together = two.detect(frames)
    assert len(together) == len(frames)
    for a, b in zip(singles, together, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
        np.testing.assert_array_equal(a.class_id, b.class_id)


def test_the_export_is_shaped_for_the_camera_aspect(shipped: tuple[Path, int], built: dict[str, Path]) -> None:
    _, imgsz = shipped
    h, w = artifacts.export_shape(imgsz, 4 / 3)
    assert w == imgsz and h % 32 == 0 and h < w and h >= imgsz * 3 / 4
    assert OpenVinoDetector(built["openvino"]).input_shape == (h, w)
    assert artifacts.export_shape(416, 3 / 4) == (416, 320)
    assert artifacts.export_shape(416, 1.0) == (416, 416)


def test_an_artefact_of_other_weights_is_stale_and_rebuilt(shipped: tuple[Path, int], built: dict[str, Path]) -> None:
    weights, imgsz = shipped
    shape = artifacts.export_shape(imgsz, 4 / 3)
    assert artifacts.is_fresh(weights, "openvino", shape)
    side = built["openvino"].with_name(built["openvino"].name + ".json")
    record = json.loads(side.read_text())
    side.write_text(json.dumps({**record, "weights_sha256": "0" * 64}))
    assert not artifacts.is_fresh(weights, "openvino", shape)
    artifacts.ensure(weights, "openvino", shape)
    assert artifacts.is_fresh(weights, "openvino", shape)
    # int8 built on a few calibration images is not what the default asks for
    assert not artifacts.is_fresh(weights, "openvino-int8", shape)


def test_openvino_refuses_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="not found"):
        OpenVinoDetector(tmp_path / "none.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<net>")
    with pytest.raises(DetectorError, match="cannot load model"):
        OpenVinoDetector(bad)


# ------------------------------------------------------------------ the accuracy metric


def _dets(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    return Detections(
        xyxy=arr[:, :4].astype(np.float32),
        confidence=arr[:, 4].astype(np.float32),
        class_id=arr[:, 5].astype(np.int64),
        class_names=("a", "b"),
    )


def test_map50_is_one_for_perfect_detections_and_drops_for_misses() -> None:
    truth = Truth(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], dtype=np.float64), np.array([0, 1]))
    perfect = _dets([(0, 0, 10, 10, 0.9, 0), (20, 20, 40, 40, 0.8, 1)])
    # 101 recall points with the envelope closed at recall 1: a perfect class scores 0.995, as in ultralytics
    assert map50([perfect], [truth])["map50"] == pytest.approx(0.995, abs=1e-3)
    # class b found only at the wrong place: its AP is 0, the mean is half
    wrong = _dets([(0, 0, 10, 10, 0.9, 0), (60, 60, 80, 80, 0.8, 1)])
    assert map50([wrong], [truth])["map50"] == pytest.approx(0.995 / 2, abs=1e-3)
    # a confident false positive ahead of the true box halves the precision at full recall
    fp_first = _dets([(50, 50, 60, 60, 0.95, 0), (0, 0, 10, 10, 0.9, 0), (20, 20, 40, 40, 0.8, 1)])
    result = map50([fp_first], [truth])
    assert 0.7 < result["map50"] < 0.8
    assert result["per_class"][0]["ap50"] == pytest.approx(0.5, abs=0.01)


def test_average_precision_of_a_known_curve() -> None:
    # precision 1 up to recall 0.5, then falling linearly to 0.5 at recall 1: 0.5 + 0.5 * 0.75
    curve = np.array([0.5, 1.0]), np.array([1.0, 0.5])
    assert ap_closed_to_full_recall(*curve) == pytest.approx(0.875, abs=0.01)
    assert ap_zero_past_last_recall(*curve) == pytest.approx(0.875, abs=0.01)  # full recall reached: no tail


def test_the_two_ap_definitions_differ_only_past_the_last_recall() -> None:
    # precision 1 up to recall 0.5 and no further: the station's figure closes the curve with a line to (1, 0)
    recall, precision = np.array([0.25, 0.5]), np.array([1.0, 1.0])
    assert ap_zero_past_last_recall(recall, precision) == pytest.approx(0.5, abs=0.01)
    assert ap_closed_to_full_recall(recall, precision) == pytest.approx(0.75, abs=0.01)


def test_yolo_labels_become_pixel_boxes(tmp_path: Path) -> None:
    label = tmp_path / "a.txt"
    label.write_text("1 0.5 0.5 0.2 0.4\n")
    t = read_yolo_labels(label, 200, 100)
    np.testing.assert_allclose(t.xyxy, [[80, 30, 120, 70]])
    assert t.class_id.tolist() == [1]
    assert len(read_yolo_labels(tmp_path / "missing.txt", 10, 10).class_id) == 0
