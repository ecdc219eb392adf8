"""Small-data aids: class-balanced sampling, defect-free negatives, tiling large images.

Each aid derives a new dataset description (list files, and patches when tiling or cropping)
from an existing one without touching the original files, and returns a sentence
for the model card saying what it did. Image caching, the fourth aid, is the
ultralytics ``cache: ram`` setting of the recipe.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from inspector.data.formats.spec import DatasetSpec, list_images
from inspector.data.formats.yolo import LabelRow, label_boxes, label_path, label_text, read_labels, write_list_yaml

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SmallDataOptions:
    balance: bool = False  # repeat images holding rare classes (repeat-factor sampling)
    balance_threshold: float = 0.5  # classes in fewer than this share of images get repeated
    negatives: Path | None = None  # folder of defect-free images added with empty labels
    tile: int | None = None  # cut images larger than 1.5 x tile into overlapping tile x tile patches
    tile_overlap: float = 0.2
    focus: int | None = None  # native-resolution crops of this size around the small objects (train and val)
    focus_full_share: float = 0.25  # share of images also kept whole (shrunk by the trainer: whole large objects)
    gray_share: float = 0.0  # share of focus crops written in grey: features that do not hang on colour
    subset: int | None = None  # keep this many training images (seeded), for small-data studies
    seed: int = 0
    splits_to_tile: tuple[str, ...] = field(default=("train", "val", "test"))


def repeat_factors(images: list[Path], threshold: float) -> list[int]:
    """LVIS-style repeat-factor sampling: r = max over the image's classes of sqrt(t / f_c), at least 1.

    ``f_c`` is the share of training images holding class c; images of rare classes are
    listed several times, so every epoch shows them more often.
    """
    per_image = [{r[0] for r in read_labels(p)} for p in images]
    counts = Counter(c for classes in per_image for c in classes)
    n = max(1, len(images))
    out = []
    for classes in per_image:
        r = max((math.sqrt(threshold / (counts[c] / n)) for c in classes), default=1.0)
        out.append(max(1, round(r)))
    return out


def seeded_subset(items: Sequence[T], n: int, seed: int) -> list[T]:
    """``n`` of ``items`` picked with ``seed``, in their order: the same seed, the same subset."""
    keep = sorted(np.random.default_rng(seed).choice(len(items), size=n, replace=False).tolist())
    return [items[i] for i in keep]


def _tile_grid(length: int, tile: int, overlap: float) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def _read(image: Path) -> npt.NDArray[np.uint8]:
    img = cv2.imread(str(image))
    if img is None:
        raise ValueError(f"cannot read image {image}")
    return np.asarray(img, dtype=np.uint8)


def _write_patch(
    img: npt.NDArray[np.uint8],
    rows: list[LabelRow],
    boxes: npt.NDArray[np.float64],
    window: tuple[int, int, int, int],
    dst: Path,
    min_visible: float,
    min_cover: float = 2.0,
    gray: bool = False,
) -> None:
    """Write ``img[window]`` to ``dst`` and its YOLO label: boxes clipped to the window.

    A box is kept when at least ``min_visible`` of it lies inside, or when its visible part
    covers at least ``min_cover`` of the patch (a large object seen through a small window).
    """
    x0, y0, x1, y1 = window
    tw, th = x1 - x0, y1 - y0
    kept: list[list[float]] = []
    ids: list[int] = []
    for (cls, *_), b in zip(rows, boxes, strict=True):
        cx0, cy0 = max(b[0], x0), max(b[1], y0)
        cx1, cy1 = min(b[2], x1), min(b[3], y1)
        inter = max(0.0, cx1 - cx0) * max(0.0, cy1 - cy0)
        area = max(1e-9, (b[2] - b[0]) * (b[3] - b[1]))
        if inter > 0 and (inter / area >= min_visible or inter / (tw * th) >= min_cover):
            kept.append([(cx0 - x0) / tw, (cy0 - y0) / th, (cx1 - x0) / tw, (cy1 - y0) / th])
            ids.append(cls)
    dst_label = label_path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst_label.parent.mkdir(parents=True, exist_ok=True)
    patch = img[y0:y1, x0:x1]
    if gray:  # three equal channels: the model's input stays BGR
        patch = np.asarray(cv2.cvtColor(cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR), np.uint8)
    cv2.imwrite(str(dst), patch, [cv2.IMWRITE_JPEG_QUALITY, 95])
    dst_label.write_text(label_text(kept, ids, decimals=6), encoding="utf-8")


def tile_image(image: Path, out_images: Path, tile: int, overlap: float, min_visible: float = 0.4) -> list[Path]:
    """Cut one large image into overlapping patches with their clipped labels; returns the patch paths.

    A box is kept in a patch when at least ``min_visible`` of its area lies inside it.
    """
    img = _read(image)
    h, w = img.shape[:2]
    rows = read_labels(image)
    boxes, _ = label_boxes(rows, w, h)
    out: list[Path] = []
    for y0 in _tile_grid(h, tile, overlap):
        for x0 in _tile_grid(w, tile, overlap):
            dst = out_images / f"{image.stem}_{x0}_{y0}.jpg"
            _write_patch(img, rows, boxes, (x0, y0, min(w, x0 + tile), min(h, y0 + tile)), dst, min_visible)
            out.append(dst)
    return out


def focus_crops(
    image: Path,
    out_images: Path,
    size: int,
    rng: np.random.Generator,
    min_visible: float = 0.4,
    gray_share: float = 0.0,
) -> list[Path]:
    """Native-resolution ``size`` x ``size`` crops that together hold every small object of the image.

    Why: a model trained on whole frames shrunk to a small input sees thin defects as a pixel or
    two; trained on crops at the camera's own scale it sees them as they are, for a fraction of the
    cost of a large input, and then runs on the whole frame at that scale. Each object that fits
    in a crop gets one (jittered) unless an earlier crop already holds it; an image without such
    objects gives one crop around its largest object, or anywhere when it has none. A share
    ``gray_share`` of the crops is written in grey, for features meant to transfer to grey
    images (steel, paper, X-ray).
    """
    img = _read(image)
    h, w = img.shape[:2]
    rows = read_labels(image)
    boxes, _ = label_boxes(rows, w, h)
    cw, ch = min(size, w), min(size, h)
    sizes = boxes[:, 2:] - boxes[:, :2] if len(boxes) else np.zeros((0, 2))
    small = [i for i in range(len(boxes)) if sizes[i, 0] <= 0.8 * cw and sizes[i, 1] <= 0.8 * ch]
    order = [small[i] for i in rng.permutation(len(small))]

    def window(cx: float, cy: float) -> tuple[int, int, int, int]:
        x0 = round(min(max(cx - cw / 2, 0), w - cw))
        y0 = round(min(max(cy - ch / 2, 0), h - ch))
        return x0, y0, x0 + cw, y0 + ch

    windows: list[tuple[int, int, int, int]] = []
    for i in order:
        b = boxes[i]
        if any(b[0] >= x0 and b[1] >= y0 and b[2] <= x1 and b[3] <= y1 for x0, y0, x1, y1 in windows):
            continue
        jx, jy = 0.4 * (cw - sizes[i, 0]), 0.4 * (ch - sizes[i, 1])
        windows.append(window((b[0] + b[2]) / 2 + rng.uniform(-jx, jx), (b[1] + b[3]) / 2 + rng.uniform(-jy, jy)))
    if not windows:
        if len(boxes):
            b = boxes[int(np.argmax(sizes[:, 0] * sizes[:, 1]))]
            windows.append(window((b[0] + b[2]) / 2 + rng.uniform(-cw / 4, cw / 4), (b[1] + b[3]) / 2))
        else:
            windows.append(window(rng.uniform(0, w), rng.uniform(0, h)))
    out: list[Path] = []
    for x0, y0, x1, y1 in windows:
        dst = out_images / f"{image.stem}_f{x0}_{y0}.jpg"
        gray = gray_share > 0 and bool(rng.random() < gray_share)
        _write_patch(img, rows, boxes, (x0, y0, x1, y1), dst, min_visible, min_cover=0.3, gray=gray)
        out.append(dst)
    return out


def _needs_tiling(image: Path, tile: int) -> bool:
    img = cv2.imread(str(image), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if img is None:
        return False
    return max(img.shape[:2]) * 8 > 1.5 * tile


def prepare(spec: DatasetSpec, out_dir: Path, opts: SmallDataOptions) -> tuple[Path, list[str]]:
    """Write a derived dataset description into ``out_dir``; returns it and the card sentences."""
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    splits: dict[str, list[Path]] = {s: spec.image_paths(s) for s in spec.splits}
    if opts.subset is not None:
        train = splits.get("train", [])
        if opts.subset > len(train):
            raise ValueError(f"asked for {opts.subset} training images but the dataset has {len(train)}")
        splits["train"] = seeded_subset(train, opts.subset, opts.seed)
        notes.append(f"a seeded subset of {opts.subset} of the {len(train)} training images (seed {opts.seed})")
    if opts.tile:
        tiled_total = 0
        for split in opts.splits_to_tile:
            new: list[Path] = []
            for img in splits.get(split, []):
                if _needs_tiling(img, opts.tile):
                    new += tile_image(img, out_dir / "tiles" / "images" / split, opts.tile, opts.tile_overlap)
                    tiled_total += 1
                else:
                    new.append(img)
            if split in splits:
                splits[split] = new
        if tiled_total:
            notes.append(
                f"tiling: {tiled_total} large images cut into {opts.tile} px patches "
                f"({opts.tile_overlap:.0%} overlap); run the model on patches of the same size"
            )
    if opts.focus:
        rng = np.random.default_rng([opts.seed, opts.focus])
        counts = Counter[str]()
        for split in ("train", "val"):
            new = []
            for img in splits.get(split, []):
                new += focus_crops(
                    img,
                    out_dir / "focus" / "images" / split / img.parent.name,
                    opts.focus,
                    rng,
                    gray_share=opts.gray_share,
                )
                if rng.random() < opts.focus_full_share:
                    new.append(img)
            counts[split] = len(new)
            if split in splits:
                splits[split] = new
        notes.append(
            f"focus crops: {opts.focus} px crops at the camera's own resolution around every small object "
            f"({counts['train']} training and {counts['val']} validation samples, {opts.focus_full_share:.0%} "
            "of the images also whole); the model runs on whole frames at the serving size"
            + (f"; {opts.gray_share:.0%} of the crops in grey" if opts.gray_share else "")
        )
    if opts.negatives:
        negs = list_images(opts.negatives)
        with_labels = [p for p in negs if read_labels(p)]
        if with_labels:
            raise ValueError(f"negatives must be defect-free, but {with_labels[0]} has labels")
        splits["train"] = splits.get("train", []) + negs
        notes.append(f"{len(negs)} defect-free negative images (no boxes) added to training")
    if opts.balance:
        train = splits.get("train", [])
        factors = repeat_factors(train, opts.balance_threshold)
        splits["train"] = [p for p, r in zip(train, factors, strict=True) for _ in range(r)]
        extra = sum(factors) - len(factors)
        notes.append(
            f"class-balanced sampling: images of rare classes repeated (repeat-factor, threshold "
            f"{opts.balance_threshold}), {extra} extra samples per epoch"
        )
    return write_list_yaml(out_dir, spec.names, splits), notes
