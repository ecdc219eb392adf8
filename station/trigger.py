"""The capture trigger: one inspection per item, taken when the item is placed and still.

States: EMPTY -> MOTION (something differs from the empty-bench reference) ->
STILL (nothing moves between frames; the still window fills) -> CAPTURED (the
sharpest frame of the window is taken, one per camera) -> EMPTY again only once
the bench matches its reference, i.e. the item was taken away. Moving the item
about while it is on the bench does not trigger a second inspection; the manual
capture key does.

Pure logic on numpy images: no threads, no clocks of its own (times are passed
in), so frame sequences can be tested table-driven. Its thresholds are the
station's settings (:class:`inspector.config.TriggerConfig`), defaults included.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from inspector.config import TriggerConfig
from inspector.types import Frame, Image

Gray = npt.NDArray[np.uint8]


class TriggerState(enum.StrEnum):
    EMPTY = "EMPTY"
    MOTION = "MOTION"
    STILL = "STILL"
    CAPTURED = "CAPTURED"


def prepare(image: Image, work_width: int) -> Gray:
    """Small, blurred grey copy: cheap to compare, insensitive to pixel noise."""
    h, w = image.shape[:2]
    scale = work_width / float(w)
    small = cv2.resize(image, (work_width, max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), dtype=np.uint8)


def sharpness(image: Image) -> float:
    """Variance of the Laplacian: higher is sharper (motion blur and defocus lower it)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def changed_fraction(a: Gray, b: Gray, threshold: int) -> float:
    if a.shape != b.shape:
        return 1.0
    return float(np.count_nonzero(cv2.absdiff(a, b) > threshold)) / float(a.size)


@dataclass(slots=True)
class CameraObservation:
    """What one camera's latest frame says."""

    occupied: float  # fraction differing from the reference
    motion: float  # fraction differing from the previous frame
    sharpness: float = 0.0


@dataclass(frozen=True, slots=True)
class Capture:
    """One item's views (the sharpest still frame of each camera) and when it came to rest."""

    frames: tuple[Frame, ...]
    still_since: float
    captured_at: float
    manual: bool = False
    sharpness: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Camera:
    reference: npt.NDArray[np.float32] | None = None
    previous: Gray | None = None
    window: list[tuple[float, Frame]] = field(default_factory=list)
    last: Frame | None = None
    observation: CameraObservation | None = None


class Trigger:
    """The station's capture state machine over one or several cameras.

    Feed it the newest frame of each camera once per tick; it returns a
    :class:`Capture` exactly once per item. Cameras are judged together: the bench
    is occupied if any camera sees something, moving if any camera sees motion,
    and a capture carries one view per camera.
    """

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = config or TriggerConfig()
        self.state = TriggerState.EMPTY
        self._cams: dict[str, _Camera] = {}
        self._still_count = 0
        self._empty_count = 0
        self._still_since = 0.0
        self.captures = 0

    # -- references -------------------------------------------------------------------

    def set_reference(self, camera_id: str, image: Image) -> None:
        """The empty bench as this camera sees it now."""
        cam = self._cams.setdefault(camera_id, _Camera())
        cam.reference = prepare(image, self.config.work_width).astype(np.float32)
        cam.previous = None

    def has_reference(self, camera_id: str) -> bool:
        cam = self._cams.get(camera_id)
        return cam is not None and cam.reference is not None

    def observation(self, camera_id: str) -> CameraObservation | None:
        cam = self._cams.get(camera_id)
        return cam.observation if cam else None

    # -- the machine ------------------------------------------------------------------

    def _observe(self, frame: Frame) -> CameraObservation:
        cfg = self.config
        cam = self._cams.setdefault(frame.camera_id, _Camera())
        small = prepare(frame.image, cfg.work_width)
        if cam.reference is None or cam.reference.shape != small.shape:
            # no reference yet: the first frame seen is taken as the empty bench
            cam.reference = small.astype(np.float32)
        ref = np.asarray(cam.reference, dtype=np.uint8) if cam.reference is not None else small
        occupied = changed_fraction(small, ref, cfg.pixel_threshold)
        motion = changed_fraction(small, cam.previous, cfg.pixel_threshold) if cam.previous is not None else 0.0
        cam.previous = small
        cam.last = frame
        obs = CameraObservation(occupied=occupied, motion=motion)
        cam.observation = obs
        return obs

    def _adapt_references(self, frames: Sequence[Frame]) -> None:
        """On an idle bench the reference follows slow light changes (the sun, lamps warming up)."""
        rate = self.config.reference_rate
        if rate <= 0:
            return
        for f in frames:
            cam = self._cams[f.camera_id]
            if cam.reference is not None and cam.previous is not None:
                cv2.accumulateWeighted(cam.previous.astype(np.float32), cam.reference, rate)

    def feed(self, frames: Sequence[Frame], now: float) -> Capture | None:
        """Advance on the newest frame of each camera (at most one per camera)."""
        if not frames:
            return None
        cfg = self.config
        obs = [self._observe(f) for f in frames]
        occupied = any(o.occupied > cfg.occupied_fraction for o in obs)
        moving = any(o.motion > cfg.motion_fraction for o in obs)

        if not occupied:
            self._empty_count += 1
        else:
            self._empty_count = 0

        if self.state == TriggerState.EMPTY:
            if occupied:
                self._start_motion()
            elif not moving:
                self._adapt_references(frames)
            return None

        if self._empty_count >= cfg.empty_frames:
            # the item was taken away (or something only passed through): back to idle
            self.state = TriggerState.EMPTY
            self._clear_windows()
            return None

        if self.state == TriggerState.CAPTURED:
            return None

        if moving or not occupied:
            self._start_motion()
            return None

        # occupied and still
        if self._still_count == 0:
            self._still_since = now
        self._still_count += 1
        self.state = TriggerState.STILL
        for f, o in zip(frames, obs, strict=True):
            o.sharpness = sharpness(f.image)
            window = self._cams[f.camera_id].window
            window.append((o.sharpness, f))
            del window[: -cfg.still_frames]
        if self._still_count >= cfg.still_frames:
            return self._capture(now, manual=False)
        return None

    def capture_now(self, now: float) -> Capture | None:
        """The manual capture key: take the views now, whatever the state (None before any frame)."""
        if not any(c.last is not None for c in self._cams.values()):
            return None
        if self._still_count == 0:
            self._still_since = now
        return self._capture(now, manual=True)

    def _capture(self, now: float, *, manual: bool) -> Capture:
        views: list[Frame] = []
        scores: dict[str, float] = {}
        for camera_id, cam in self._cams.items():
            if cam.window:
                score, best = max(cam.window, key=lambda sf: sf[0])
            elif cam.last is not None:
                best, score = cam.last, sharpness(cam.last.image)
            else:
                continue
            views.append(best)
            scores[camera_id] = score
        self.state = TriggerState.CAPTURED
        self.captures += 1
        still_since = self._still_since
        self._clear_windows()
        return Capture(frames=tuple(views), still_since=still_since, captured_at=now, manual=manual, sharpness=scores)

    def _start_motion(self) -> None:
        self.state = TriggerState.MOTION
        self._clear_windows()

    def _clear_windows(self) -> None:
        self._still_count = 0
        for cam in self._cams.values():
            cam.window.clear()

    def forget(self, camera_ids: Sequence[str]) -> None:
        """Drop cameras that are gone (a lost camera must not hold the last frame it sent)."""
        for cid in camera_ids:
            cam = self._cams.get(cid)
            if cam is not None:
                cam.window.clear()
                cam.last = None
                cam.previous = None
