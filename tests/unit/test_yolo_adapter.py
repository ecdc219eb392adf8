"""The ultralytics adapters (serving and training) against real ultralytics objects, offline."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from inspector.detect.base import Detector, DetectorError
from inspector.detect.yolo import UltralyticsDetector, to_detections
from inspector.labelmap import default_labelmap
from inspector.training.ultralytics import train
from tests import netguard
from tests.builders import frame, tiny_yolo_dataset


def test_adapter_converts_a_real_result() -> None:
    from ultralytics.engine.results import Results

    names = default_labelmap().names
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0, 0.9, 1.0], [0.0, 0.0, 64.0, 48.0, 0.5, 0.0]])
    result = Results(np.zeros((48, 64, 3), np.uint8), path="x.jpg", names=dict(enumerate(names)), boxes=boxes)
    d = to_detections(result, names)
    assert len(d) == 2
    np.testing.assert_allclose(d.xyxy[0], [10, 20, 30, 40])
    assert d.names == ["scratch", "item"]
    np.testing.assert_allclose(d.confidence, [0.9, 0.5], rtol=1e-6)
    empty = Results(
        np.zeros((48, 64, 3), np.uint8), path="x.jpg", names=dict(enumerate(names)), boxes=torch.zeros((0, 6))
    )
    assert len(to_detections(empty, names)) == 0


def test_train_one_epoch_then_predict_offline(tmp_path: Path) -> None:
    """Build from a yaml, train one epoch on a generated dataset, load, predict: no outside connection."""
    before = list(netguard.ATTEMPTS)
    data = tiny_yolo_dataset(tmp_path / "ds")
    result = train("yolov8n.yaml", data, out_dir=tmp_path / "runs", epochs=1, imgsz=64, batch=4, threads=2, plots=False)
    assert result.best.is_file()
    det = UltralyticsDetector(result.best, imgsz=64, confidence=0.0, threads=2)
    assert isinstance(det, Detector)
    assert det.class_names == default_labelmap().names
    out = det.detect([frame(64, 64), frame(80, 60, value=30)])
    assert len(out) == 2
    for d, (w, h) in zip(out, [(64, 64), (80, 60)], strict=True):
        assert d.class_names == det.class_names
        if len(d):
            assert (d.xyxy[:, [0, 2]] <= w + 1).all() and (d.xyxy[:, [1, 3]] <= h + 1).all()
    assert det.model_version.startswith("best-")
    assert torch.get_num_threads() == 2
    assert netguard.ATTEMPTS == before, f"outside connections were attempted: {netguard.ATTEMPTS[len(before) :]}"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [(None, ".pt", "not found"), (b"not a checkpoint", ".pt", "cannot load"), (b"x", ".onnx", "must be a PyTorch")],
)
def test_bad_model_files_give_clear_errors(tmp_path: Path, content: bytes | None, suffix: str, message: str) -> None:
    path = tmp_path / f"model{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DetectorError, match=message):
        UltralyticsDetector(path)


def test_only_the_adapters_import_ultralytics(repo_root: Path) -> None:
    """One module serves with ultralytics, one trains and measures with it; nothing else sees it."""
    allowed = {repo_root / "inspector" / "detect" / "yolo.py", repo_root / "inspector" / "training" / "ultralytics.py"}
    offenders = []
    for path in list((repo_root / "inspector").rglob("*.py")) + list((repo_root / "station").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            if any(m == "ultralytics" or m.startswith("ultralytics.") for m in mods) and path not in allowed:
                offenders.append(f"{path.relative_to(repo_root)}:{node.lineno}")
    assert offenders == []


def test_cpu_bf16_training_patches_only_the_training_model() -> None:
    """The bf16 step: forward in bfloat16 and channels-last, outputs back in fp32 for the loss."""
    from types import SimpleNamespace

    from ultralytics.nn.tasks import DetectionModel

    from inspector.training.ultralytics import cpu_bf16_callbacks, cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bfloat16 kernels; the callback leaves the model alone")
    model = DetectionModel("yolov8n.yaml", nc=8, verbose=False).train()
    untouched = DetectionModel("yolov8n.yaml", nc=8, verbose=False).train()
    trainer = SimpleNamespace(model=model, device=torch.device("cpu"))
    cpu_bf16_callbacks()["on_train_start"](trainer)

    seen: list[torch.dtype] = []
    model.model[0].conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    out = model.predict(torch.rand(2, 3, 64, 64))
    assert seen == [torch.bfloat16], "the convolutions ran in bfloat16"
    assert model.model[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.model[0].conv.weight.dtype == torch.float32, "weights stay fp32 (mixed precision)"
    tensors = [v for v in out.values() if isinstance(v, torch.Tensor)] if isinstance(out, dict) else list(out)
    assert tensors and all(t.dtype == torch.float32 for t in tensors), "the loss sees fp32"
    assert trainer.inspector_precision == "bf16"
    assert "predict" not in vars(untouched), "only the trainer's model is patched"


def test_unknown_training_precision_is_refused(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=2, n_val=1, size=64)
    with pytest.raises(DetectorError, match="precision"):
        train("yolov8n.yaml", data, out_dir=tmp_path / "runs", imgsz=64, precision="fp8")
