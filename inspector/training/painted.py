"""The painted-damage classifier: taught from good items only, by painting foreign blotches on them.

A memory bank of good patches (PatchCore) flags what it has not seen, which on a varied family
includes rare but good things (a new colour, an unusual label). The other way in, from DRAEM:
paint irregular blotches on good crops (a piece of another item's texture, a noisy colour, or the
item itself darker or lighter, partly see-through), and teach a small classifier on the frozen
patch features to say which patches were painted. It never sees a real defect, so it knows no
class; it learns what "something foreign on the surface" looks like, on every family at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from inspector.anomaly import features as feat

AREA = (0.01, 0.10)  # share of the crop a painted blotch covers
CLEAN_SHARE = 0.25  # crops left as they are: the classifier must also learn to say "nothing"
POSITIVE = 0.3  # a patch counts as painted when this share of it is
HIDDEN = 64


def blotch_mask(rng: np.random.Generator, size: int = feat.INPUT_SIZE) -> npt.NDArray[np.bool_]:
    """An irregular blotch (thresholded smooth noise with ragged edges), away from the crop's border."""
    cells = int(rng.choice([4, 6, 8, 12]))
    noise = cv2.resize(
        rng.standard_normal((cells, cells)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    smooth = np.asarray(cv2.GaussianBlur(noise, (0, 0), size / cells / 4), np.float32)
    mask = smooth > np.quantile(smooth, 1 - rng.uniform(*AREA))
    border = size // 10  # the crop's margin is bench, not item
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = False, False, False, False
    ragged = cv2.resize(rng.standard_normal((size // 4, size // 4)).astype(np.float32), (size, size))
    return np.asarray(mask & (ragged > -0.8), bool)


def paint(
    rng: np.random.Generator, image: npt.NDArray[np.uint8], others: Sequence[npt.NDArray[np.uint8]]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """``image`` (a square RGB crop at the model's input) with one blotch painted on it, and the blotch's mask."""
    size = image.shape[0]
    mask = blotch_mask(rng, size)
    base = image.astype(np.float32)
    kind = rng.random()
    if kind < 1 / 3:  # a piece of another item's texture
        src = cv2.resize(others[int(rng.integers(len(others)))], (size, size))
        fill = np.rot90(src, int(rng.integers(4))).astype(np.float32)
    elif kind < 2 / 3:  # a noisy colour
        fill = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 25, base.shape), 0, 255)
    else:  # the surface itself darker or lighter
        fill = np.clip(base * rng.uniform(0.2, 1.8) + rng.uniform(-60, 60), 0, 255)
    see_through = rng.uniform(0.0, 0.6)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]
    out = base * (1 - alpha) + alpha * ((1 - see_through) * fill + see_through * base)
    return np.clip(out, 0, 255).astype(np.uint8), mask


COPIES = 3
EPOCHS = 8


def painted_recipe(crops: int) -> dict[str, Any]:
    """How the classifier was taught, for the version's meta."""
    return {
        "crops": crops,
        "copies": COPIES,
        "epochs": EPOCHS,
        "blotch_area": list(AREA),
        "clean_share": CLEAN_SHARE,
        "positive_share": POSITIVE,
        "hidden": HIDDEN,
    }


class Head(torch.nn.Module):
    """1x1 -> 3x3 -> 1x1 convolutions over the patch grid (about 50k weights)."""

    def __init__(self, channels: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(channels, hidden, 1)
        self.c2 = torch.nn.Conv2d(hidden, hidden, 3, padding=1)
        self.c3 = torch.nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c3(F.relu(self.c2(F.relu(self.c1(x)))))[:, 0]


def fit_head(
    run: torch.jit.ScriptModule,
    crops: Sequence[npt.NDArray[np.uint8]],
    *,
    copies: int = COPIES,
    epochs: int = EPOCHS,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Paint ``copies`` variants of every good crop, extract their features and fit the head.

    Returns the arrays :func:`inspector.anomaly.model.painted_head` reads (``head.*``).
    """
    if not crops:
        raise ValueError("the painted-damage classifier needs good crops")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    size, grid = feat.INPUT_SIZE, feat.GRID
    goods: list[npt.NDArray[np.uint8]] = [
        np.asarray(cv2.resize(np.ascontiguousarray(c), (size, size), interpolation=cv2.INTER_AREA), np.uint8)
        for c in crops
    ]
    # one tensor filled in place and normalised in place: 400 crops of 8 families in 3 copies are 6.7 GB of
    # features, which a list, its concatenation and a normalised copy held three times over
    n = len(goods) * copies
    x: torch.Tensor | None = None
    y = np.empty((n, grid, grid), np.float32)
    filled = 0
    for _ in range(copies):
        images: list[npt.NDArray[np.uint8]] = []
        masks: list[npt.NDArray[np.bool_]] = []
        for g in goods:
            if rng.random() < CLEAN_SHARE:
                images.append(g)
                masks.append(np.zeros((size, size), bool))
            else:
                img, m = paint(rng, g, goods)
                images.append(img)
                masks.append(m)
        for a in range(0, len(images), 32):
            f = feat.run(run, feat.to_batch(images[a : a + 32]))
            if x is None:
                x = torch.empty((n, *f.shape[1:]), dtype=f.dtype)
            x[filled + a : filled + a + len(f)] = f
        y[filled : filled + len(masks)] = np.stack(
            [cv2.resize(m.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA) for m in masks]
        )
        filled += len(images)
    assert x is not None
    mu = x.mean((0, 2, 3))
    sd = x.std((0, 2, 3)) + 1e-4
    x.sub_(mu[None, :, None, None]).div_(sd[None, :, None, None])
    painted = torch.from_numpy(y)  # the share of each patch that was painted
    head = Head(x.shape[1])
    opt = torch.optim.AdamW(head.parameters(), 1e-3, weight_decay=1e-4)
    target = (painted > POSITIVE).float()
    weight = 1 + 9 * (painted > 0.1).float()  # painted patches are rare: weigh them up
    for epoch in range(epochs):
        order = torch.randperm(len(x))
        total = 0.0
        for a in range(0, len(x), 32):
            idx = order[a : a + 32]
            loss = F.binary_cross_entropy_with_logits(head(x[idx]), target[idx], weight=weight[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log(f"painted-damage classifier: epoch {epoch + 1}/{epochs}, loss {total / len(x):.4f}")
    w = {k: v.detach().numpy().astype(np.float32) for k, v in head.state_dict().items()}
    return {
        "head.mu": mu.numpy().astype(np.float32),
        "head.sd": sd.numpy().astype(np.float32),
        "head.w1": w["c1.weight"],
        "head.b1": w["c1.bias"],
        "head.w2": w["c2.weight"],
        "head.b2": w["c2.bias"],
        "head.w3": w["c3.weight"],
        "head.b3": w["c3.bias"],
    }
