"""What every frame source shares: the interface the station reads, its error, its reported state.

The station reads every source the same way (``open``, ``read``, ``close``), so the
trigger and the page never care whether frames come from a USB camera, an RTSP
stream, a recorded shift or the built-in synthetic bench.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from inspector.types import Frame, ValidationError, utcnow

log = logging.getLogger(__name__)


class SourceError(ValueError):
    """A camera source spec that cannot be used (unknown form, missing file, empty folder)."""


# A query parameter whose name holds one of these carries a credential (pwd=, password=, access_token=, apikey=, ...).
_SECRET_PARAM_WORDS = ("pass", "pwd", "token", "key", "secret", "auth", "user", "login", "cred", "sig")


def mask_url(spec: str) -> str:
    """A camera spec as the page, the API, the logs and the errors show it: no credential in it.

    The whole user info goes (``rtsp://admin:p@ss@cam/s`` -> ``rtsp://***@cam/s``: the host is
    after the last ``@``), and so do the values of credential-like query parameters.
    """
    if "://" not in spec:
        return spec  # a device, a file, a folder or the synthetic bench
    try:
        parts = urlsplit(spec)
    except ValueError:  # not a URL after all (a stray bracket): show none of it
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, eq, _value = pair.partition("=")
        secret = eq and any(word in name.lower() for word in _SECRET_PARAM_WORDS)
        pairs.append(f"{name}=***" if secret else pair)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))


def mask_in(text: str, spec: str) -> str:
    """``text`` (an error from OpenCV, FFmpeg, ...) with ``spec`` replaced by its masked form."""
    return text.replace(spec, mask_url(spec)) if spec else text


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
