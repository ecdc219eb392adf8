"""Detectors: one interface, backends behind it, chosen by configuration."""

from __future__ import annotations

from pathlib import Path

from inspector.config import DetectorConfig
from inspector.detect.base import Detector, DetectorError

__all__ = ["MODEL_SUFFIX", "Detector", "DetectorError", "load_detector", "warm_up"]


# what each exported backend loads; an artefact is built from the ``.pt`` by inspector.training.artifacts
MODEL_SUFFIX = {"onnx": ".onnx", "onnx-int8": ".int8.onnx", "openvino": ".xml", "openvino-int8": ".xml"}


def load_detector(cfg: DetectorConfig, weights: Path, model_version: str | None = None) -> Detector:
    """Build the configured backend on a local model file.

    Ultralytics loads ``.pt`` weights; an exported backend loads its exported file
    (``inspector.training.artifacts.model_file`` finds or builds it from the weights).
    """
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
    if cfg.backend in MODEL_SUFFIX:
        suffix = MODEL_SUFFIX[cfg.backend]
        if not weights.name.endswith(suffix):
            raise DetectorError(f"the {cfg.backend} backend loads an exported {suffix} file, not {weights}")
        if cfg.backend.startswith("onnx"):
            from inspector.detect.onnx import OnnxDetector

            return OnnxDetector(
                weights,
                confidence=cfg.confidence,
                iou=cfg.iou,
                imgsz=cfg.imgsz,
                threads=cfg.thread_count(),
                model_version=model_version,
            )
        from inspector.detect.openvino import OpenVinoDetector

        return OpenVinoDetector(
            weights,
            confidence=cfg.confidence,
            iou=cfg.iou,
            imgsz=cfg.imgsz,
            threads=cfg.thread_count(),
            streams=cfg.streams,
            precision=cfg.precision,
            model_version=model_version,
        )
    raise DetectorError(f"detector backend {cfg.backend!r} is not available in this build")


def warm_up(detector: Detector, size: tuple[int, int], runs: int = 1) -> float:
    """Run the model on a blank frame of ``size`` (width, height); returns the seconds it took.

    A backend's first call pays for its set-up (ultralytics builds its predictor then: seconds,
    not milliseconds). Done when a model is loaded to serve, the first returned item or the
    first one after a model swap is not the one kept waiting.
    """
    import time

    import numpy as np

    from inspector.types import Frame

    w, h = size
    frame = Frame(image=np.zeros((h, w, 3), np.uint8), camera_id="warm-up")
    t0 = time.perf_counter()
    for _ in range(runs):
        detector.detect([frame])
    return time.perf_counter() - t0
