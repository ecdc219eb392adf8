"""Draw detections on an image, for the operator page and annotated downloads."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.types import Detections, Image

# One colour per class id (BGR), chosen to stay readable on bench mats and products.
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (200, 200, 200),  # item
    (0, 215, 255),  # scratch
    (255, 144, 30),  # dent
    (60, 20, 220),  # crack
    (0, 128, 128),  # stain
    (180, 105, 255),  # tear
    (50, 205, 50),  # missing_part
    (0, 69, 255),  # broken_seal
)


def colour_for(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[class_id % len(_PALETTE)]


def draw_detections(image: Image, detections: Detections, *, copy: bool = True, thickness: int = 2) -> Image:
    """Boxes with 'class confidence' labels; the item box is drawn thin so defects stand out."""
    out = image.copy() if copy else image
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 900.0)
    for det in detections:
        x1, y1, x2, y2 = (round(v) for v in det.xyxy)
        colour = colour_for(det.class_id)
        t = 1 if det.class_name == "item" else thickness
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, t, cv2.LINE_AA)
        label = f"{det.class_name} {det.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - 6 >= 0 else min(h - 2, y2 + th + 4)
        cv2.rectangle(out, (x1, ty - th - 2), (min(w - 1, x1 + tw + 4), ty + base - 2), colour, -1)
        cv2.putText(out, label, (x1 + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.ascontiguousarray(out)
