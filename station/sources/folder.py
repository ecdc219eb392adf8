"""A folder of still images replayed as a camera."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from inspector.data.formats import IMAGE_SUFFIXES
from inspector.types import Frame
from station.sources.base import Replay, SourceError, to_frame

log = logging.getLogger(__name__)


class FolderSource(Replay):
    """A folder of images replayed in name order, looping by default.

    Unreadable files are skipped with a warning rather than stopping the replay.
    """

    def __init__(self, path: Path | str, camera_id: str = "cam0", *, loop: bool = True) -> None:
        super().__init__(path, camera_id, loop=loop)
        self.files: list[Path] = []
        self._index = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.path}")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {self.path}")
        self._index = 0
        self._state = "ok"
        self._error = None

    def read(self) -> Frame | None:
        if self._state == "closed" or not self.files:
            return None
        for _ in range(len(self.files)):
            if self._index >= len(self.files):
                if not self.loop:
                    self._state = "ended"
                    return None
                self._index = 0
            path = self.files[self._index]
            self._index += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self._error = f"skipped unreadable image {path.name}"
                log.warning("%s", self._error)
                continue
            frame = to_frame(image, self.camera_id)
            if frame is not None:
                return frame
        self._state = "failed"
        self._error = f"no readable image in {self.path}"
        return None

    def close(self) -> None:
        self._state = "closed"
