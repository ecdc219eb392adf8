"""What a run measures: the active model at its own input size, its exports, and the bench frame."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_IMAGE_SIZE = (1280, 960)
BACKENDS = ("plain-ultralytics", "ultralytics", "onnx", "onnx-int8", "openvino", "openvino-int8")
EXPORTED = ("onnx", "onnx-int8", "openvino", "openvino-int8")


@dataclass(frozen=True)
class Subject:
    """The model, the frame it is timed on, and the folder the run works in."""

    weights: Path
    version: str | None
    imgsz: int
    threads: int
    work: Path
    image: Path
    shape: tuple[int, int]
    # what the WMS tells of the item with each request (its category picks the family's anomaly model)
    item: dict[str, Any] = field(default_factory=dict)

    def args(self) -> list[str]:
        """The arguments a child part needs to load this model for this frame."""
        return [
            *("--weights", str(self.weights), "--image", str(self.image)),
            *("--imgsz", str(self.imgsz), "--threads", str(self.threads)),
        ]

    def describe(self) -> dict[str, Any]:
        """The results' ``model``."""
        return {
            "version": self.version,
            "weights": str(self.weights),
            "imgsz": self.imgsz,
            "export_shape_hw": list(self.shape),
        }


def prepare(out_dir: Path, threads: int) -> Subject:
    """The active model at its own input size (a newly promoted one may be trained at another), the frame, exports."""
    from inspector.registry import resolve_weights, serving_hints

    weights, version = resolve_weights(None)
    meta_path = weights.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    imgsz = int(serving_hints(version).get("imgsz") or (meta.get("recipe") or {}).get("imgsz") or 640)
    work = (out_dir / "work").resolve()  # data.yaml files name their folders absolutely
    work.mkdir(parents=True, exist_ok=True)
    image, item = _bench_image(work)
    shape = _ensure_exports(weights, imgsz, threads)
    return Subject(weights, version, imgsz, threads, work, image, shape, item)


def _bench_image(work: Path) -> tuple[Path, dict[str, Any]]:
    """One synthetic returned item as a 1280x960 JPEG, rendered once and reused, and its category."""
    import cv2

    from inspector.data.synth import render_sample

    path = work / "bench_1280x960.jpg"
    told = work / "bench_1280x960.item.json"
    if not path.is_file() or not told.is_file():
        sample = render_sample(7, size=BENCH_IMAGE_SIZE)
        cv2.imwrite(str(path), sample.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        told.write_text(json.dumps({"category": sample.meta["category"]}))
    return path, dict(json.loads(told.read_text()))


def _ensure_exports(weights: Path, imgsz: int, threads: int) -> tuple[int, int]:
    """Build (or reuse, when fresh) every exported artefact for the bench frame's shape; returns the shape."""
    from inspector.training import artifacts

    shape = artifacts.export_shape(imgsz, BENCH_IMAGE_SIZE[0] / BENCH_IMAGE_SIZE[1])
    calibration = functools.cache(lambda: tuple(artifacts.calibration_images(shape)))  # rendered once for both
    for backend in EXPORTED:
        t = time.perf_counter()
        fresh = artifacts.is_fresh(weights, backend, shape)
        path = artifacts.ensure(weights, backend, shape, threads=threads, calibration=calibration)
        took = "reused" if fresh else f"built in {time.perf_counter() - t:.0f} s"
        print(f"export {backend}: {path.name} ({took})", flush=True)
    return shape
