"""Detectors: one interface, backends behind it, chosen by configuration."""

from __future__ import annotations

from pathlib import Path

from inspector.config import DetectorConfig
from inspector.detect.base import Detector, DetectorError

__all__ = ["Detector", "DetectorError", "load_detector"]


def load_detector(cfg: DetectorConfig, weights: Path, model_version: str | None = None) -> Detector:
    """Build the configured backend on local weights."""
    if cfg.backend == "ultralytics":
        from inspector.detect.yolo import UltralyticsDetector

        return UltralyticsDetector(
            weights,
            confidence=cfg.confidence,
            iou=cfg.iou,
            imgsz=cfg.imgsz,
            threads=cfg.thread_count(),
            device=cfg.device,
            model_version=model_version,
        )
    if cfg.backend in ("onnx", "onnx-int8"):
        from inspector.detect.onnx import OnnxDetector

        suffix = ".int8.onnx" if cfg.backend == "onnx-int8" else ".onnx"
        onnx_path = weights if weights.name.endswith(suffix) else weights.with_suffix(suffix)
        if not onnx_path.is_file():
            raise DetectorError(
                f"the {cfg.backend} backend needs an exported model at {onnx_path}: "
                "run 'inspector models export VERSION' (and 'python -m inspector.bench --quantize' for int8)"
            )
        return OnnxDetector(
            onnx_path,
            confidence=cfg.confidence,
            iou=cfg.iou,
            imgsz=cfg.imgsz,
            threads=cfg.thread_count(),
            model_version=model_version,
        )
    raise DetectorError(f"detector backend {cfg.backend!r} is not available in this build")
