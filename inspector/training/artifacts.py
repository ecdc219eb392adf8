"""The exported models the fast backends run, built offline next to the weights.

Every artefact is shaped for the frames the station sees: a static input of ``imgsz``
on the long side and the camera's aspect on the other, rounded up to the stride, which
is the shape ultralytics' own letterbox gives a frame of that aspect (416 px, 4:3 ->
320x416, a quarter fewer pixels than 416x416). A sidecar ``.json`` names the weights'
sha256, the shape and the tool versions; an artefact whose sidecar does not match is
stale and is rebuilt. Files are written under a temporary name and renamed into place.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inspector import registry
from inspector.config import DetectorConfig
from inspector.detect import MODEL_SUFFIX
from inspector.detect.base import DetectorError
from inspector.types import Image

BACKENDS = ("onnx", "onnx-int8", "openvino", "openvino-int8")
STRIDE = 32
CALIBRATION_IMAGES = 128
CALIBRATION_SEED = 10_000


def export_shape(imgsz: int, aspect: float) -> tuple[int, int]:
    """(h, w) of the static input for frames of ``aspect`` = width / height."""
    if aspect >= 1:
        return (math.ceil(imgsz / aspect / STRIDE) * STRIDE, imgsz)
    return (imgsz, math.ceil(imgsz * aspect / STRIDE) * STRIDE)


def artefact_path(weights: Path, backend: str, shape: tuple[int, int]) -> Path:
    """Where the artefact of ``backend`` for ``shape`` lives (OpenVINO: the ``.xml``; its ``.bin`` beside it)."""
    h, w = shape
    stem = weights.with_suffix("").name
    suffix = {
        "onnx": ".onnx",
        "onnx-int8": ".int8.onnx",
        "openvino": ".openvino.xml",
        "openvino-int8": ".int8.openvino.xml",
    }.get(backend)
    if suffix is None:
        raise DetectorError(f"backend {backend!r} has no exported artefact")
    return weights.with_name(f"{stem}.{h}x{w}{suffix}")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("ultralytics", "onnxruntime", "openvino", "nncf"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _expected(weights: Path, backend: str, shape: tuple[int, int], calibrated: int | None) -> dict[str, Any]:
    return {
        "backend": backend,
        "shape": list(shape),
        "weights_sha256": registry.sha256_file(weights),
        "versions": _versions(),
        "calibration_images": calibrated if backend.endswith("int8") else None,
    }


def is_fresh(weights: Path, backend: str, shape: tuple[int, int]) -> bool:
    """Whether the artefact exists and was built from these weights, at this shape, by these tools."""
    path = artefact_path(weights, backend, shape)
    side = _sidecar(path)
    if not path.is_file() or not side.is_file():
        return False
    if backend.startswith("openvino") and not path.with_suffix(".bin").is_file():
        return False
    try:
        recorded = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return bool(recorded == _expected(weights, backend, shape, CALIBRATION_IMAGES))


def calibration_images(shape: tuple[int, int], n: int = CALIBRATION_IMAGES) -> list[Image]:
    """Synthetic bench frames at the export's aspect, rendered with their own seed (not the test set's)."""
    from inspector.data.synth import render_sample

    h, w = shape
    size = (640, round(640 * h / w)) if w >= h else (round(640 * w / h), 640)
    return [render_sample(CALIBRATION_SEED + i, size=size).image for i in range(n)]


def ensure(
    weights: Path,
    backend: str,
    shape: tuple[int, int],
    *,
    threads: int | None = None,
    calibration: Callable[[], Sequence[Image]] | None = None,
) -> Path:
    """The artefact of ``backend`` for ``weights`` at ``shape``, built first when missing or stale.

    ``calibration`` gives the int8 builds their images (default: :data:`CALIBRATION_IMAGES` bench
    renders); an artefact calibrated on another number of images is not fresh for the default.
    """
    if backend not in BACKENDS:
        raise DetectorError(f"backend {backend!r} has no exported artefact")
    if not weights.is_file():
        raise DetectorError(f"model file not found: {weights}")
    path = artefact_path(weights, backend, shape)
    if is_fresh(weights, backend, shape):
        return path
    calib = functools.cache(lambda: tuple(calibration() if calibration else calibration_images(shape)))
    used: int | None = None
    if backend == "onnx":
        _build_onnx(weights, shape, path, threads)
    elif backend == "onnx-int8":
        src = ensure(weights, "onnx", shape, threads=threads, calibration=calib)
        from inspector.training.quantize import quantize_int8

        used = len(calib())
        quantize_int8(src, path, list(calib()))
    elif backend == "openvino":
        src = ensure(weights, "onnx", shape, threads=threads, calibration=calib)
        from inspector.training.quantize import openvino_fp32

        openvino_fp32(src, path)
    else:
        src = ensure(weights, "openvino", shape, threads=threads, calibration=calib)
        from inspector.training.quantize import openvino_int8

        used = len(calib())
        openvino_int8(src, path, list(calib()))
    _write_sidecar(path, _expected(weights, backend, shape, used))
    return path


def model_file(cfg: DetectorConfig, weights: Path) -> Path:
    """The file the configured backend loads from ``weights``.

    The ``.pt`` itself for ultralytics; for an exported backend an artefact named directly,
    or the one built from the ``.pt`` for the configured size and aspect (built first when
    missing or stale, so serving a new version pays for its export once, on first start).
    """
    if cfg.backend == "ultralytics" or weights.name.endswith(MODEL_SUFFIX[cfg.backend]):
        return weights
    return ensure(weights, cfg.backend, export_shape(cfg.imgsz, cfg.aspect), threads=cfg.thread_count())


def _write_sidecar(path: Path, record: dict[str, Any]) -> None:
    side = _sidecar(path)
    tmp = side.with_name(side.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(side)


def _build_onnx(weights: Path, shape: tuple[int, int], dst: Path, threads: int | None) -> None:
    """Ultralytics' ONNX export at a static (h, w), done on a copy so nothing else lands beside the weights."""
    from inspector.training.ultralytics import export_onnx

    with tempfile.TemporaryDirectory(prefix="inspector-export-") as tmp:
        src = Path(tmp) / "weights.pt"
        shutil.copyfile(weights, src)
        out = export_onnx(src, imgsz=shape, threads=threads)
        staged = dst.with_name(dst.name + f".{os.getpid()}.tmp")
        shutil.copyfile(out, staged)
        staged.replace(dst)
