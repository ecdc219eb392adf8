"""Detectors: one interface, backends behind it, chosen by configuration."""

from __future__ import annotations

from pathlib import Path

from inspector.config import DetectorConfig
from inspector.detect.base import Detector, DetectorError

__all__ = ["Detector", "DetectorError", "load_detector", "warm_up"]


def load_detector(cfg: DetectorConfig, weights: Path, model_version: str | None = None) -> Detector:
    """Build the configured backend on local weights.

    The exported backends take an artefact named directly, or the one built from the
    ``.pt`` weights for the configured size and aspect (built first when missing or stale).
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
    if cfg.backend in ("onnx", "onnx-int8", "openvino", "openvino-int8"):
        from inspector.detect import artifacts

        suffix = {"onnx": ".onnx", "onnx-int8": ".int8.onnx"}.get(cfg.backend, ".xml")
        if weights.name.endswith(suffix):  # an exported file named directly
            path = weights
        else:
            shape = artifacts.export_shape(cfg.imgsz, cfg.aspect)
            path = artifacts.ensure(weights, cfg.backend, shape, threads=cfg.thread_count())
        if cfg.backend.startswith("onnx"):
            from inspector.detect.onnx import OnnxDetector

            return OnnxDetector(
                path,
                confidence=cfg.confidence,
                iou=cfg.iou,
                imgsz=cfg.imgsz,
                threads=cfg.thread_count(),
                model_version=model_version,
            )
        from inspector.detect.openvino import OpenVinoDetector

        return OpenVinoDetector(
            path,
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
