"""A recorded video file replayed as a camera (replaying a shift)."""

from __future__ import annotations

from pathlib import Path

import cv2

from inspector.types import Frame
from station.sources.base import CaptureState, Replay, SourceError, to_frame

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpg", ".mjpeg"})


class VideoFileSource(Replay, CaptureState):
    """A recorded video played frame by frame, looping by default (replaying a shift)."""

    def __init__(self, path: Path | str, camera_id: str = "cam0", *, loop: bool = True) -> None:
        super().__init__(path, camera_id, loop=loop)
        self._cap: cv2.VideoCapture | None = None
        self.frames_read = 0

    def open(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot decode video file {self.path} (unsupported or corrupt)")
        self._cap = cap
        self._state = "ok"
        self._error = None

    def read(self) -> Frame | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        if not ok and self.loop and self.frames_read:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        if not ok or image is None:
            self._state = "ended"
            self._error = f"end of video {self.path.name}"
            return None
        self.frames_read += 1
        return to_frame(image, self.camera_id)
