"""The ultralytics adapter: the only module of the station that imports ultralytics.

It loads local weights or builds a model from a YOLO yaml, runs offline with the
thread count we set, and converts ultralytics results to :class:`Detections` at
this edge. Training, validation and export wrappers live here too, so the rest
of the code never sees an ultralytics object.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector import runtime
from inspector.detect.base import DetectorError
from inspector.types import Detections, Frame

if TYPE_CHECKING:
    from ultralytics import YOLO  # type: ignore[attr-defined]


def _import_yolo(threads: int | None) -> type[YOLO]:
    n = runtime.configure(threads)
    from ultralytics import YOLO  # type: ignore[attr-defined]
    from ultralytics.utils import SETTINGS, torch_utils

    # select_device() resets torch to ultralytics' own NUM_THREADS (cores - 1) on CPU.
    torch_utils.NUM_THREADS = n  # type: ignore[attr-defined]
    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})
    import torch

    torch.set_num_threads(n)
    return YOLO


def _one_line(exc: BaseException) -> str:
    """The first line of an exception message, without ultralytics' decorations."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace("ERROR ❌️", "").replace("❌", "").strip()


def file_digest(path: Path, length: int = 12) -> str:
    """A short content hash, used as the model version of an unregistered weights file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


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
        if not path.is_file():
            raise DetectorError(f"model file not found: {path}")
        if path.suffix != ".pt":
            raise DetectorError(f"model file must be a PyTorch .pt checkpoint: {path}")
        yolo_cls = _import_yolo(threads)
        try:
            self._model = yolo_cls(str(path), task="detect")
        except Exception as exc:  # ultralytics raises many kinds for a bad checkpoint
            raise DetectorError(f"cannot load model {path}: {_one_line(exc)}") from exc
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


# ------------------------------------------------------------------ training side


@dataclass(frozen=True, slots=True)
class TrainResult:
    best: Path
    last: Path
    run_dir: Path
    seconds: float
    epochs_run: int


def train(
    model: str | Path,
    data_yaml: Path,
    *,
    out_dir: Path,
    name: str = "run",
    epochs: int = 1,
    imgsz: int = 640,
    batch: int = 16,
    seed: int = 0,
    threads: int | None = None,
    time_hours: float | None = None,
    workers: int = 0,
    **overrides: Any,
) -> TrainResult:
    """Train (or fine-tune) a YOLO model offline and return where its weights are.

    ``model`` is a YOLO yaml (from scratch) or a local ``.pt`` (start from weights).
    """
    yolo_cls = _import_yolo(threads)
    src = str(model)
    if src.endswith(".pt") and not Path(src).is_file():
        raise DetectorError(f"initial weights not found: {src}")
    t0 = time.perf_counter()
    try:
        m = yolo_cls(src, task="detect")
        args: dict[str, Any] = {
            "data": str(data_yaml),
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "seed": seed,
            "deterministic": True,
            "device": "cpu",
            "workers": workers,
            "project": str(out_dir.resolve()),
            "name": name,
            "exist_ok": True,
            "verbose": False,
            "plots": True,
            "amp": False,
        }
        if time_hours:
            args["time"] = time_hours
        args.update(overrides)
        m.train(**args)
    except DetectorError:
        raise
    except Exception as exc:
        raise DetectorError(f"training failed: {_one_line(exc)}") from exc
    run_dir = out_dir.resolve() / name
    best = run_dir / "weights" / "best.pt"
    last = run_dir / "weights" / "last.pt"
    if not best.is_file():
        best = last
    epochs_run = int(getattr(getattr(m, "trainer", None), "epoch", epochs - 1)) + 1
    return TrainResult(best=best, last=last, run_dir=run_dir, seconds=time.perf_counter() - t0, epochs_run=epochs_run)
