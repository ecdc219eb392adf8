"""Patch features for anomaly models: the first layers of our own YOLO backbone, PatchCore-style.

The taps are layers 2, 4 and 6 of a YOLOv8 backbone (stride 4, 8 and 16); each is averaged over
its 3x3 neighbourhood (a patch sees its surroundings, as PatchCore's local aggregation does),
resized to one grid (stride 8 at the model's input) and concatenated. The extractor is saved as
TorchScript inside the anomaly model, so serving needs neither the checkpoint nor ultralytics.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

INPUT_SIZE = 224  # the crop is resized to this square
GRID = 28  # patch grid at the input size (stride 8)
TAPS = (2, 4, 6)
CROP_MARGIN = 0.04  # share of the item box added on every side of a crop


class PatchFeatures(torch.nn.Module):
    """Backbone layers -> (N, C, GRID, GRID) patch features from RGB tensors in 0..1."""

    def __init__(self, layers: Any, taps: Sequence[int] = TAPS, grid: int = GRID) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(list(layers)[: max(taps) + 1])
        self.taps = tuple(taps)
        self.grid = grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                pooled = F.avg_pool2d(x, 3, 1, 1)
                outs.append(F.interpolate(pooled, size=(self.grid, self.grid), mode="bilinear", align_corners=False))
        return torch.cat(outs, 1)


def trace(layers: Any) -> torch.jit.ScriptModule:
    """The extractor as TorchScript (eval), to be saved inside an anomaly model."""
    module = PatchFeatures(layers).eval()
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of export, but loads without Python code
        warnings.simplefilter("ignore", FutureWarning)
        with torch.inference_mode():
            traced: torch.jit.ScriptModule = torch.jit.trace(  # type: ignore[no-untyped-call]
                module, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), check_trace=False
            )
            return traced


def for_inference(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """A frozen copy (weights folded into the graph) to run with :func:`run`; the traced module goes to disk."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        frozen: torch.jit.ScriptModule = torch.jit.freeze(module.eval())
    return frozen


def run(module: torch.jit.ScriptModule, batch: torch.Tensor) -> torch.Tensor:
    """Patch features of a batch (no autograd)."""
    with torch.inference_mode():
        out: torch.Tensor = module(batch)
    return out


def to_batch(crops: Sequence[npt.NDArray[np.uint8]]) -> torch.Tensor:
    """RGB uint8 crops of any size -> a (N, 3, INPUT_SIZE, INPUT_SIZE) float tensor in 0..1."""
    arr = np.stack(
        [cv2.resize(np.ascontiguousarray(c), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA) for c in crops]
    )
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


def item_crop(
    image: npt.NDArray[np.uint8], box: Sequence[float], margin: float = CROP_MARGIN
) -> tuple[npt.NDArray[np.uint8], tuple[int, int, int, int]]:
    """The item's crop at native resolution: its box grown by ``margin`` per side, clipped to the picture."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    a = max(0, int(np.floor(x0 - mx)))
    b = max(0, int(np.floor(y0 - my)))
    c = min(w, int(np.ceil(x1 + mx)))
    d = min(h, int(np.ceil(y1 + my)))
    if c - a < 8 or d - b < 8:
        raise ValueError(f"item box {list(box)} is too small to crop")
    return image[b:d, a:c], (a, b, c, d)
