"""Drawing labelled boxes on pictures (previews, mosaics, the contact sheet)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

_PALETTE = [  # BGR, readable on most backgrounds
    (90, 200, 90),
    (0, 220, 255),
    (255, 160, 0),
    (60, 60, 255),
    (0, 140, 255),
    (255, 0, 200),
    (255, 255, 0),
    (0, 0, 200),
    (200, 200, 200),
    (120, 80, 255),
]


def colour_for(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[int(class_id) % len(_PALETTE)]


def draw_boxes(
    image: npt.NDArray[np.uint8],
    xyxy: npt.ArrayLike,
    class_ids: npt.ArrayLike,
    names: tuple[str, ...],
    thickness: int = 1,
) -> npt.NDArray[np.uint8]:
    """A copy of the picture with thin labelled boxes (thin, so what they mark stays visible)."""
    out = np.asarray(image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), np.uint8)
    scale = max(0.35, out.shape[0] / 1000)
    for (x0, y0, x1, y1), c in zip(
        np.asarray(xyxy, np.float64).reshape(-1, 4), np.asarray(class_ids).reshape(-1), strict=True
    ):
        name = names[int(c)] if 0 <= int(c) < len(names) else f"?{int(c)}"
        col = colour_for(int(c))
        p0, p1 = (int(x0), int(y0)), (int(x1), int(y1))
        cv2.rectangle(out, p0, p1, col, thickness, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = p0[1] - 3 if p0[1] - th - 4 > 0 else p1[1] + th + 3
        cv2.rectangle(out, (p0[0], ty - th - 2), (p0[0] + tw + 2, ty + 2), (0, 0, 0), -1)
        cv2.putText(out, name, (p0[0] + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, col, 1, cv2.LINE_AA)
    return out
