"""The live view: the cameras side by side as one JPEG, with the last result drawn on it.

Encoded once per new frame on the station thread, so any number of viewers share it. It is
encoded at a display size (``max_width``): a 1280x960 camera's JPEG takes about twice the time
and bytes of a 960x720 one, and the page shows it smaller anyway; captures keep the native frames.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from inspector.draw import draw_detections
from inspector.types import Detections, Frame, Image


class LiveView:
    """The newest live-view JPEG and its sequence number; ``overlay`` is drawn on it per camera."""

    def __init__(self, jpeg_quality: int = 80, max_width: int | None = 960) -> None:
        self._jpeg_quality = jpeg_quality
        self.max_width = max_width
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self.seq = 0
        self.overlay: dict[str, Detections] = {}

    def _compose(self, frames: list[Frame], label: str) -> Image:
        h = min(f.image.shape[0] for f in frames)
        width = sum(f.image.shape[1] * h / f.image.shape[0] for f in frames)
        scale = min(1.0, self.max_width / width) if self.max_width else 1.0
        images: list[Image] = []
        for f in frames:
            img = f.image
            fh, fw = img.shape[:2]
            size = (max(1, round(fw * h / fh * scale)), max(1, round(h * scale)))
            if size != (fw, fh):
                # linear is a seventh of the cost of area at 0.75; area only where linear would alias
                interpolation = cv2.INTER_LINEAR if size[1] * 2 >= fh else cv2.INTER_AREA
                img = np.asarray(cv2.resize(img, size, interpolation=interpolation), dtype=np.uint8)
            overlay = self.overlay.get(f.camera_id)
            if overlay is not None and len(overlay):  # drawn on the small image, the boxes scaled to it
                img = draw_detections(img, overlay.scaled(size[0] / fw, size[1] / fh))
            images.append(img)
        out = np.hstack(images) if len(images) > 1 else images[0]
        if out is frames[0].image:  # the label is written on it: never on the camera's frame
            out = out.copy()
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
