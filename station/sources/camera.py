"""USB cameras (device index or /dev/video*) and IP cameras (RTSP/HTTP streams), read with OpenCV.

A live camera that drops out is reopened with exponential backoff instead of
taking the station down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from inspector.types import Frame
from station.sources.base import CaptureState, mask_in, mask_url, to_frame

log = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the station uses (a fake one stands in for tests)."""

    def isOpened(self) -> bool: ...  # OpenCV's name

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...

    def set(self, prop_id: int, value: float) -> bool: ...


def _default_capture(target: int | str) -> Capture:
    if isinstance(target, int):
        return cv2.VideoCapture(target)
    if target.startswith(URL_SCHEMES):
        # Bounded waits: a dead IP camera must not block a reconnect for minutes.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(target)


@dataclass(slots=True)
class Backoff:
    """Exponential backoff: initial, doubled after each failure up to a ceiling, reset on success."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.initial_s * self.factor**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class OpenCVSource(CaptureState):
    """A USB camera (device index or /dev/video*), or an RTSP/HTTP stream, read with OpenCV.

    Lost frames are not errors: the capture is released and reopened after a
    growing delay (0.5 s, 1 s, 2 s ... up to ``backoff_max_s``). While it waits,
    ``read`` returns None at once so the station loop keeps serving the page.
    """

    live = True

    def __init__(
        self,
        target: int | str,
        camera_id: str = "cam0",
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        failures_before_reconnect: int = 5,
        capture_factory: Callable[[int | str], Capture] = _default_capture,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.camera_id = camera_id
        self._size = (width, height)
        self._fps = fps
        self._factory = capture_factory
        self._clock = clock
        self._cap: Capture | None = None
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._retry_at = 0.0
        self._bad_reads = 0
        self._max_bad_reads = max(1, failures_before_reconnect)
        self._state = "closed"
        self._error: str | None = None
        self.reconnects = 0

    @property
    def retry_in_s(self) -> float:
        """Seconds until the next reconnect attempt (0 when connected)."""
        return 0.0 if self._cap is not None else max(0.0, self._retry_at - self._clock())

    @property
    def description(self) -> str:
        """The camera as the page may show it (no credentials)."""
        return self._describe()

    def _describe(self) -> str:
        """Never a camera credential on the page, in the API or in the logs."""
        return mask_url(str(self.target))

    def open(self) -> None:
        """Try to connect now; a failure schedules the next attempt instead of raising."""
        self._retry_at = 0.0
        self._try_connect()

    def _try_connect(self) -> bool:
        if self._state == "closed":
            self._state = "connecting"
        cap: Capture | None = None
        ok = False
        try:
            cap = self._factory(self.target)
            ok = bool(cap.isOpened())
        except Exception as exc:  # a driver or FFmpeg error is one more failed attempt
            self._error = f"cannot open camera {self._describe()}: {mask_in(str(exc), str(self.target))}"
        if not ok or cap is None:
            if cap is not None:
                cap.release()
                self._error = f"cannot open camera {self._describe()}"
            self._schedule_retry()
            return False
        w, h = self._size
        if w:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
        if h:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if self._fps:
            cap.set(cv2.CAP_PROP_FPS, self._fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of stale ones
        if self._state == "reconnecting":
            self.reconnects += 1
            log.info("camera %s reconnected", self.camera_id)
        self._cap = cap
        self._state = "ok"
        self._error = None
        self._bad_reads = 0
        self._backoff.reset()
        return True

    def _schedule_retry(self) -> None:
        delay = self._backoff.next_delay()
        self._retry_at = self._clock() + delay
        self._state = "reconnecting"
        log.warning("camera %s unavailable (%s); retrying in %.1f s", self.camera_id, self._error, delay)

    def _drop(self, reason: str) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._error = reason
        self._schedule_retry()

    def read(self) -> Frame | None:
        if self._state == "closed":
            return None
        if self._cap is None and (self._clock() < self._retry_at or not self._try_connect()):
            return None
        cap = self._cap
        if cap is None:
            return None
        try:
            ok, image = cap.read()
        except Exception as exc:
            ok, image = False, None
            self._error = mask_in(str(exc), str(self.target))
        if not ok or image is None or not isinstance(image, np.ndarray) or image.size == 0:
            self._bad_reads += 1
            if self._bad_reads >= self._max_bad_reads:
                self._drop(f"camera {self._describe()} stopped sending frames")
            return None
        self._bad_reads = 0
        return to_frame(image, self.camera_id)
