"""The product-family classifier: what is on the bench, from the item crop the detector found.

A torchvision MobileNetV3-small built with ``weights=None`` (nothing is downloaded)
and trained here from scratch (:mod:`inspector.training.family`). Its prediction is
compared with the SKU's category by the grader: a confident disagreement is a
WRONG_ITEM. Weights files hold the state dict and the metadata needed to use them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from inspector.grading.base import FamilyPrediction
from inspector.items import FAMILIES

INPUT_SIZE = 96  # crops are squared and resized to this side
CROP_PAD = 0.08  # context kept around the item box, as a fraction of its longer side
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # RGB order
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
FORMAT = "inspector-family-1"

Box = tuple[float, float, float, float]
Crop = npt.NDArray[np.uint8]


def build_model(num_classes: int = len(FAMILIES)) -> nn.Module:
    """MobileNetV3-small with random weights (no download) and one output per family."""
    with warnings.catch_warnings():  # torchvision warns about its image codecs, which are not used here
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.models import mobilenet_v3_small

    model: nn.Module = mobilenet_v3_small(weights=None, num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1  # torchvision's 0.01 suits long ImageNet runs, not short runs from scratch
    return model


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Recompute batch-norm statistics as an exact average over ``batches``.

    The running statistics lag behind the weights while training; evaluating with
    them after a short run gives near-random answers.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for x in batches:
        if len(x) > 1:
            model(x)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.eval()


def crop_item(image: npt.NDArray[np.uint8], box: Box, size: int = INPUT_SIZE, pad: float = CROP_PAD) -> Crop:
    """A square crop around the item box (with some context), resized to ``size``; BGR uint8."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be BGR uint8 HxWx3, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"item box {box} is empty")
    side = max(x2 - x1, y2 - y1) * (1 + 2 * pad)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sx1, sy1 = round(cx - side / 2), round(cy - side / 2)
    sx2, sy2 = sx1 + max(1, round(side)), sy1 + max(1, round(side))
    # pad with the edge colour so the crop stays square at the picture border
    left, top = max(0, -sx1), max(0, -sy1)
    right, bottom = max(0, sx2 - w), max(0, sy2 - h)
    patch = image[max(0, sy1) : min(h, sy2), max(0, sx1) : min(w, sx2)]
    if patch.size == 0:
        raise ValueError(f"item box {box} lies outside the {w}x{h} image")
    if left or top or right or bottom:
        patch = np.asarray(cv2.copyMakeBorder(patch, top, bottom, left, right, cv2.BORDER_REPLICATE), dtype=np.uint8)
    return np.asarray(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def to_batch(crops: Sequence[Crop]) -> torch.Tensor:
    """BGR uint8 crops -> a normalised float NCHW RGB tensor."""
    arr = np.stack([c[:, :, ::-1] for c in crops]).astype(np.float32) / 255.0
    arr = (arr - _MEAN) / _STD
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


@dataclass
class FamilyClassifier:
    """A trained family classifier and what it needs at inference time."""

    model: nn.Module
    families: tuple[str, ...] = FAMILIES
    input_size: int = INPUT_SIZE
    version: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"classifier knows unknown families {unknown}")
        self.model.eval()

    @torch.no_grad()
    def predict_crops(self, crops: Sequence[Crop]) -> list[FamilyPrediction]:
        if not crops:
            return []
        sized = [
            c
            if c.shape[:2] == (self.input_size, self.input_size)
            else crop_item(c, (0, 0, c.shape[1], c.shape[0]), self.input_size, 0.0)
            for c in crops
        ]
        probs = torch.softmax(self.model(to_batch(sized)), dim=1).numpy()
        out = []
        for p in probs:
            k = int(np.argmax(p))
            out.append(FamilyPrediction(family=self.families[k], confidence=float(p[k])))
        return out

    def predict(self, image: npt.NDArray[np.uint8], box: Box) -> FamilyPrediction:
        """The family of the item in ``box`` of ``image``."""
        return self.predict_crops([crop_item(image, box, self.input_size)])[0]

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "families": list(self.families),
            "input_size": self.input_size,
            "version": self.version,
            "metrics": self.metrics,
            "state_dict": self.model.state_dict(),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> FamilyClassifier:
        """Load weights saved by :meth:`save`; a clear error for anything else."""
        if not path.is_file():
            raise FileNotFoundError(f"family model not found: {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise ValueError(f"cannot load family model {path}: {exc.__class__.__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a family model ({FORMAT})")
        families = tuple(str(f) for f in payload["families"])
        model = build_model(len(families))
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as exc:
            raise ValueError(f"{path}: weights do not fit the model: {str(exc).splitlines()[0]}") from None
        return cls(
            model=model,
            families=families,
            input_size=int(payload["input_size"]),
            version=str(payload.get("version", "")),
            metrics=dict(payload.get("metrics", {})),
        )
