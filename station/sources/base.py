"""What every frame source shares: the interface the station reads, its error, its reported state.

The station reads every source the same way (``open``, ``read``, ``close``), so the
trigger and the page never care whether frames come from a USB camera, an RTSP
stream, a recorded shift or the built-in synthetic bench.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from inspector.types import Frame, ValidationError, utcnow

log = logging.getLogger(__name__)


class SourceError(ValueError):
    """A camera source spec that cannot be used (unknown form, missing file, empty folder)."""


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields bench frames.

    ``read`` never raises for a camera that drops out: it returns None and the
    source reports ``healthy = False`` with a ``state`` the page can show.
    ``live`` sources pace themselves (a camera delivers at its own rate); the
    station paces the others (files, folders, synthetic) at the configured fps.
    """

    camera_id: str
    live: bool

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def state(self) -> str: ...

    @property
    def last_error(self) -> str | None: ...


def to_frame(image: Any, camera_id: str) -> Frame | None:
    """Wrap a decoded image; anything a camera hands back that is not a BGR image is dropped."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        log.warning("camera %s returned a non-8-bit image; dropped", camera_id)
        return None
    if image.ndim == 2:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    try:
        return Frame(image=np.ascontiguousarray(image), camera_id=camera_id, captured_at=utcnow())
    except ValidationError as exc:
        log.warning("camera %s returned an unusable image: %s", camera_id, exc)
        return None


class SourceState:
    """The state every source reports to the page: ok, reconnecting, closed, ... and the last error."""

    _state: str
    _error: str | None

    @property
    def healthy(self) -> bool:
        return self._state == "ok"

    @property
    def state(self) -> str:
        return self._state

    @property
    def last_error(self) -> str | None:
        return self._error


class CaptureState(SourceState):
    """A source that reads through an OpenCV capture, released when the source closes."""

    _cap: Any

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._state = "closed"


class Replay(SourceState):
    """A recording (a video file, a folder of images) replayed at the station's pace, looping by default."""

    live = False

    def __init__(self, path: Path | str, camera_id: str = "cam0", *, loop: bool = True) -> None:
        self.path = Path(path)
        self.camera_id = camera_id
        self.loop = loop
        self.description = str(self.path)
        self._state = "closed"
        self._error: str | None = None
