"""The live view: the cameras side by side as one JPEG, with the last result drawn on it.

Encoded once per new frame on the station thread, so any number of viewers share it.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from inspector.draw import draw_detections
from inspector.types import Detections, Frame, Image


class LiveView:
    """The newest live-view JPEG and its sequence number; ``overlay`` is drawn on it per camera."""

    def __init__(self, jpeg_quality: int = 80) -> None:
        self._jpeg_quality = jpeg_quality
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self.seq = 0
        self.overlay: dict[str, Detections] = {}

    def _compose(self, frames: list[Frame], label: str) -> Image:
        images: list[Image] = []
        for f in frames:
            img = f.image
            overlay = self.overlay.get(f.camera_id)
            if overlay is not None and len(overlay):
                img = draw_detections(img, overlay)
            images.append(img)
        if len(images) == 1:
            out = images[0].copy() if images[0] is frames[0].image else images[0]
        else:
            h = min(i.shape[0] for i in images)
            scaled = [cv2.resize(i, (round(i.shape[1] * h / i.shape[0]), h)) if i.shape[0] != h else i for i in images]
            out = np.hstack(scaled)
        cv2.putText(out, label, (10, out.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (10, out.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        return np.ascontiguousarray(out)

    def encode(self, frames: list[Frame], label: str) -> None:
        """Show ``frames`` with ``label`` written under them; no frames shows "no camera"."""
        if frames:
            image = self._compose(frames, label)
        else:
            image = np.full((240, 320, 3), 40, dtype=np.uint8)
            cv2.putText(image, "no camera", (90, 125), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._jpeg_quality])
        if ok:
            with self._lock:
                self._jpeg = buf.tobytes()
                self.seq += 1

    def latest(self) -> tuple[int, bytes | None]:
        with self._lock:
            return self.seq, self._jpeg
