"""The ONNX Runtime backend gives the same detections as the PyTorch backend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.boxes import iou_matrix
from inspector.config import DetectorConfig
from inspector.detect import load_detector
from inspector.detect.base import DetectorError
from inspector.detect.onnx import OnnxDetector, letterbox
from inspector.detect.yolo import UltralyticsDetector
from inspector.training.artifacts import model_file
from inspector.training.ultralytics import export_onnx, train
from inspector.types import Frame
from tests.builders import tiny_yolo_dataset


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("onnx")
    data = tiny_yolo_dataset(root / "ds", n_train=8, n_val=4, size=96)
    result = train("yolov8n.yaml", data, out_dir=root / "runs", epochs=2, imgsz=96, batch=4, plots=False)
    onnx_path = export_onnx(result.best, imgsz=96)
    return result.best, onnx_path


@pytest.mark.parametrize("size", [(96, 96), (120, 160), (200, 90)])
def test_onnx_matches_pytorch(tiny_model: tuple[Path, Path], size: tuple[int, int]) -> None:
    pt, onnx_path = tiny_model
    rng = np.random.default_rng(size[0])
    img = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
    cv2.rectangle(img, (size[1] // 4, size[0] // 4), (size[1] // 2, size[0] // 2), (220, 220, 220), -1)
    frame = Frame(image=img)
    ref = UltralyticsDetector(pt, imgsz=96, confidence=1e-5).detect([frame])[0]
    ours = OnnxDetector(onnx_path, confidence=1e-5).detect([frame])[0]
    assert ours.class_names == ref.class_names
    # The tiny model learned only class 0 ("item"); the other classes keep their initial, tied scores,
    # where float noise between the two runtimes decides argmax and NMS ties. Compare the learned class.
    ref, ours = ref.of_class("item"), ours.of_class("item")
    top = ref[np.argsort(-ref.confidence)[:10]]
    assert len(top) > 0, "the tiny model should propose some boxes at confidence 1e-5"
    ious = iou_matrix(top.xyxy, ours.xyxy)
    best = ious.argmax(axis=1)
    assert (ious.max(axis=1) > 0.98).all()
    np.testing.assert_allclose(ours.confidence[best], top.confidence, atol=2e-3)
    np.testing.assert_array_equal(ours.class_id[best], top.class_id)


def test_load_detector_chooses_the_onnx_backend(tiny_model: tuple[Path, Path]) -> None:
    pt, onnx_path = tiny_model
    cfg = DetectorConfig(backend="onnx", imgsz=96)
    det = load_detector(cfg, model_file(cfg, pt), "v1")  # the artefact is built from the weights on first use
    assert isinstance(det, OnnxDetector) and det.model_version == "v1"
    assert model_file(DetectorConfig(backend="onnx"), onnx_path) == onnx_path  # an artefact named directly
    assert load_detector(DetectorConfig(backend="onnx"), onnx_path, "v1").imgsz == 96
    with pytest.raises(DetectorError, match="not found"):
        model_file(DetectorConfig(backend="onnx"), onnx_path.with_name("missing.pt"))
    with pytest.raises(DetectorError, match=r"loads an exported \.onnx file"):
        load_detector(cfg, pt, "v1")


def test_bad_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    with pytest.raises(DetectorError, match="cannot load model"):
        OnnxDetector(bad)
    with pytest.raises(DetectorError, match="not found"):
        OnnxDetector(tmp_path / "none.onnx")


@pytest.mark.parametrize(("h", "w"), [(480, 640), (960, 1280), (100, 50), (640, 640)])
def test_letterbox_keeps_aspect_and_centres(h: int, w: int) -> None:
    img = np.full((h, w, 3), 200, np.uint8)
    out, (gx, gy), (px, py) = letterbox(img, (320, 320))
    assert out.shape == (320, 320, 3)
    assert abs(gx - gy) < 0.02
    assert out[int(py) + 1, int(px) + 1, 0] == 200
    assert abs((320 - w * gx) / 2 - px) <= 1 and abs((320 - h * gy) / 2 - py) <= 1
