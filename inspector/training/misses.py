"""The worst misses of an evaluation as a contact sheet: each missed true box on its crop, with its class.

A table of recalls says how much is missed; a person asks what. ``inspector evaluate`` draws the
largest true defect boxes that no kept prediction matched (:func:`inspector.metrics.at_operating_point`)
in one row, each tile a crop around the box with the box and its class name, and the picture's name
underneath, so the reason (too faint, too small, cut off, mislabelled) can be seen at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from inspector.data.draw import draw_boxes

TILE = 256  # pixels per tile side
CAPTION = 22  # pixels under each tile for the picture's name
_BACKDROP = 32


def crop_around(
    image: npt.NDArray[np.uint8], xyxy: Sequence[float], margin: float = 0.6, least: int = 48
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """The box with ``margin`` of its size on each side (at least ``least`` px), clipped; and the crop's origin."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = xyxy
    pad_x = max(least, margin * (x2 - x1))
    pad_y = max(least, margin * (y2 - y1))
    left, top = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
    right, bottom = min(w, int(np.ceil(x2 + pad_x))), min(h, int(np.ceil(y2 + pad_y)))
    if right <= left or bottom <= top:  # a box off the picture (a bad label): show the whole picture
        return image, (0, 0)
    return image[top:bottom, left:right], (left, top)


def _tile(
    image: npt.NDArray[np.uint8], miss: Mapping[str, Any], names: tuple[str, ...], caption: str
) -> npt.NDArray[np.uint8]:
    crop, (ox, oy) = crop_around(image, miss["xyxy"])
    s = TILE / max(crop.shape[:2])  # scaled first, drawn after: the label reads the same on every tile
    small = np.asarray(
        cv2.resize(
            crop,
            (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
        ),
        np.uint8,
    )
    x1, y1, x2, y2 = miss["xyxy"]
    box = np.array([[x1 - ox, y1 - oy, x2 - ox, y2 - oy]]) * s
    class_id = names.index(miss["class"]) if miss["class"] in names else len(names)
    small = draw_boxes(small, box, [class_id], names, thickness=2)
    cell = np.full((TILE + CAPTION, TILE, 3), _BACKDROP, np.uint8)
    cell[: small.shape[0], : small.shape[1]] = small[:TILE, :TILE]
    cv2.putText(cell, caption[:36], (4, TILE + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    return cell


def write_misses_sheet(
    misses: Sequence[Mapping[str, Any]], images: Sequence[Path], names: Sequence[str], path: Path
) -> Path | None:
    """One row of tiles, one per miss (``image`` indexes ``images``); None, and no file, when nothing was missed."""
    from inspector.imageio import read_image

    label_names = tuple(names)
    tiles = []
    for miss in misses:
        picture = images[int(miss["image"])]
        image = np.asarray(read_image(picture), np.uint8)
        tiles.append(_tile(image, miss, label_names, f"{picture.name}: {miss['class']} missed"))
    if not tiles:
        return None
    gap = np.full((TILE + CAPTION, 4, 3), 0, np.uint8)
    row = np.hstack([part for t in tiles for part in (t, gap)][:-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), row):
        raise OSError(f"cannot write {path}")
    return path
