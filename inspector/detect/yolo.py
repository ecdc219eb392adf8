"""The ultralytics adapter for serving: load local weights, run them, return :class:`Detections`.

It holds the one offline set-up of ultralytics (:func:`yolo_class`: no network, a local
font, our thread count), which the training side (:mod:`inspector.training.ultralytics`)
uses as well, and converts ultralytics results at this edge, so the rest of the code
never sees an ultralytics object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector import runtime
from inspector.detect.base import DetectorError, one_line
from inspector.types import Detections, Frame

if TYPE_CHECKING:
    from ultralytics import YOLO  # type: ignore[attr-defined]


def yolo_class(threads: int | None) -> type[YOLO]:
    """Ultralytics' ``YOLO``, imported offline with ``threads`` torch threads; every use of ultralytics starts here."""
    n = runtime.configure(threads)
    from ultralytics import YOLO  # type: ignore[attr-defined]
    from ultralytics.utils import SETTINGS, torch_utils

    # select_device() resets torch to ultralytics' own NUM_THREADS (cores - 1) on CPU.
    torch_utils.NUM_THREADS = n  # type: ignore[attr-defined]
    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})
    # ultralytics replaces PIL.Image.open with a wrapper that, on bytes PIL cannot identify, tries to
    # install and import a HEIF plugin; uploads are untrusted, so the original opener goes back.
    from PIL import Image as PILImage
    from ultralytics.utils import patches

    original_open = getattr(patches, "_image_open", None)
    if original_open is not None:
        PILImage.open = original_open
    import torch

    torch.set_num_threads(n)
    return YOLO


def file_digest(path: Path, length: int = 12) -> str:
    """A short content hash, used as the model version of an unregistered weights file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:length]


def names_of(model: Any) -> tuple[str, ...]:
    """The model's labelmap as a tuple indexed by class id."""
    names = model.names
    if isinstance(names, dict):
        return tuple(str(names[i]) for i in range(len(names)))
    return tuple(str(n) for n in names)


def to_detections(result: Any, class_names: Sequence[str]) -> Detections:
    """Convert one ultralytics ``Results`` to :class:`Detections` (pixel xyxy)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty(class_names)
    data = boxes.data.detach().cpu().numpy()
    return Detections(
        xyxy=data[:, :4].astype(np.float32),
        confidence=data[:, 4].astype(np.float32),
        class_id=data[:, 5].astype(np.int64),
        class_names=tuple(class_names),
    )


def _load_checkpoint(path: Path, threads: int | None) -> Any:
    """``YOLO(path)`` offline; a missing, misnamed or unreadable checkpoint is a :class:`DetectorError` naming it."""
    if not path.is_file():
        raise DetectorError(f"model file not found: {path}")
    if path.suffix != ".pt":
        raise DetectorError(f"model file must be a PyTorch .pt checkpoint: {path}")
    yolo_cls = yolo_class(threads)
    try:
        return yolo_cls(str(path), task="detect")
    except Exception as exc:  # ultralytics raises many kinds for a bad checkpoint
        raise DetectorError(f"cannot load model {path}: {one_line(exc)}") from exc


class UltralyticsDetector:
    """A detector backed by an ultralytics YOLO model on local weights."""

    def __init__(
        self,
        weights: str | Path,
        *,
        confidence: float = 0.25,
        iou: float = 0.5,
        imgsz: int = 640,
        threads: int | None = None,
        device: str = "cpu",
        model_version: str | None = None,
    ) -> None:
        path = Path(weights)
        self._model = _load_checkpoint(path, threads)
        self._names = names_of(self._model)
        self._version = model_version or f"{path.stem}-{file_digest(path)}"
        self.weights = path
        self.confidence = confidence
        self.iou = iou
        self.imgsz = imgsz
        self.device = device

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        results = self._model.predict(
            [f.image for f in frames],
            conf=self.confidence,
            iou=self.iou,
            imgsz=self.imgsz,
            device=self.device,
            verbose=False,
        )
        return [to_detections(r, self._names) for r in results]


def plain_predictor(weights: str | Path, *, imgsz: int, threads: int | None = None) -> Callable[[str], int]:
    """Plain ``YOLO(weights).predict(path)``: the reference the benchmark compares the station against.

    It gets the same thread count as the station's backends (ultralytics alone would pin one).
    Returns a function that predicts one image file and returns the number of boxes.
    """
    yolo_cls = yolo_class(threads)
    model: Any = yolo_cls(str(weights), task="detect")

    def run(path: str) -> int:
        results = model.predict(path, imgsz=imgsz, device="cpu", verbose=False)
        return len(results[0].boxes)

    return run


def backbone_layers(weights: str | Path, last: int, *, threads: int | None = None) -> Any:
    """The first ``last + 1`` layers of a YOLO checkpoint's backbone as a plain ``torch.nn.ModuleList`` (eval).

    Used as a frozen feature extractor (the anomaly models): ultralytics loads the checkpoint here,
    and the caller gets torch modules only. The YOLOv8 backbone is a chain up to layer 9, so the
    layers can be run one after the other.
    """
    path = Path(weights)
    model = _load_checkpoint(path, threads)
    import torch

    net = model.model.fuse(verbose=False)  # batch norms folded into the convolutions: the same numbers, faster
    layers = list(net.model)[: last + 1]
    if any(getattr(m, "f", -1) != -1 for m in layers):
        raise DetectorError(f"{path}: the first {last + 1} layers are not a plain chain")
    out = torch.nn.ModuleList(layers).float().eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out
