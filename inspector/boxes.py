"""Box geometry in pixel xyxy (numpy): conversion from centre form, overlap, IoU, NMS.

One place for it, so a backend's NMS, the parity check between runtimes and the mAP
figures all measure overlap with the same arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = np.ndarray[Any, Any]


def cxcywh_to_xyxy(boxes: Array) -> Array:
    """Centre-x, centre-y, width, height rows (N, 4) -> x1, y1, x2, y2 rows, in the input's dtype."""
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def xyxy_to_cxcywh(boxes: Array) -> Array:
    """x1, y1, x2, y2 rows (N, 4) -> centre-x, centre-y, width, height rows, in the input's dtype."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)


def area(boxes: Array) -> Array:
    """Area of each xyxy box along the last axis."""
    return np.asarray((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))


def intersection(a: Array, b: Array) -> Array:
    """Area shared by xyxy boxes ``a`` and ``b`` (broadcast against each other along the leading axes)."""
    x1 = np.maximum(a[..., 0], b[..., 0])
    y1 = np.maximum(a[..., 1], b[..., 1])
    x2 = np.minimum(a[..., 2], b[..., 2])
    y2 = np.minimum(a[..., 3], b[..., 3])
    return np.asarray(np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None))


def iou_matrix(a: Array, b: Array) -> npt.NDArray[np.float64]:
    """Pairwise IoU of xyxy boxes in float64, shape (len(a), len(b)); 0 where the union is empty."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    inter = intersection(a64[:, None, :], b64[None, :, :])
    union = area(a64)[:, None] + area(b64)[None, :] - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0), dtype=np.float64)


def nms(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64],
    iou: float,
    max_det: int,
) -> npt.NDArray[np.int64]:
    """Class-aware greedy NMS: indices kept, best score first, at most ``max_det``.

    Boxes are offset by class so that different classes never suppress each other; the
    arithmetic stays in the boxes' float32, as the exported backends decode them.
    """
    if boxes.shape[0] == 0:
        return np.zeros((0,), dtype=np.int64)
    b = boxes + classes.astype(np.float32)[:, None] * 8192.0
    order = scores.argsort()[::-1]
    keep: list[int] = []
    areas = area(b)
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        inter = intersection(b[i], b[rest])
        ious = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[ious <= iou]
    return np.asarray(keep, dtype=np.int64)


def join_cut(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64],
    cut: npt.NDArray[np.bool_],
    gap: float = 2.0,
    min_aligned: float = 0.5,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Join the pieces of objects that a tile edge cut apart: the union box, the best score.

    ``cut`` marks boxes that end on an inner tile edge. A cut box joins each box of its class
    that overlaps or touches it (within ``gap`` px) and lies in the same band: the two share at
    least ``min_aligned`` of the shorter one's extent across the seam. NMS alone cannot do it:
    the two halves of a scratch cut by a seam hardly overlap, so both would survive as two.
    """
    n = boxes.shape[0]
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i in np.flatnonzero(cut):
        b = boxes[i]
        ox = np.minimum(b[2], boxes[:, 2]) - np.maximum(b[0], boxes[:, 0])
        oy = np.minimum(b[3], boxes[:, 3]) - np.maximum(b[1], boxes[:, 1])
        min_w = np.maximum(np.minimum(b[2] - b[0], boxes[:, 2] - boxes[:, 0]), 1e-6)
        min_h = np.maximum(np.minimum(b[3] - b[1], boxes[:, 3] - boxes[:, 1]), 1e-6)
        near = (ox >= -gap) & (oy >= -gap)
        aligned = (oy >= min_aligned * min_h) | (ox >= min_aligned * min_w)
        for j in np.flatnonzero(near & aligned & (classes == classes[i])):
            parent[root(int(j))] = root(int(i))
    roots = np.array([root(i) for i in range(n)], dtype=np.int64)
    groups = np.unique(roots)
    out_boxes = np.empty((len(groups), 4), dtype=np.float32)
    out_scores = np.empty((len(groups),), dtype=np.float32)
    out_classes = np.empty((len(groups),), dtype=np.int64)
    for k, g in enumerate(groups):
        members = roots == g
        part = boxes[members]
        out_boxes[k] = (part[:, 0].min(), part[:, 1].min(), part[:, 2].max(), part[:, 3].max())
        out_scores[k] = scores[members].max()
        out_classes[k] = classes[g]
    return out_boxes, out_scores, out_classes
