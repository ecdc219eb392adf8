"""Frame sources behind one interface: cameras, video files, image folders, the synthetic bench.

The station reads every source the same way (``open``, ``read``, ``close``), so the
trigger and the page never care whether frames come from a USB camera, an RTSP
stream, a recorded shift or the built-in synthetic bench. A live camera that
drops out is reopened with exponential backoff instead of taking the station down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs

import cv2
import numpy as np
import numpy.typing as npt

from inspector.types import Frame, Image, ValidationError, utcnow

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpg", ".mjpeg"})
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


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


def _frame(image: Any, camera_id: str) -> Frame | None:
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


# ------------------------------------------------------------------------ OpenCV cameras


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


class _SourceState:
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


class OpenCVSource(_SourceState):
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
        if isinstance(self.target, str) and "@" in self.target:
            # never show camera credentials on the page or in logs
            scheme, _, rest = self.target.partition("://")
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return str(self.target)

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
            self._error = f"cannot open camera {self._describe()}: {exc}"
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
            self._error = str(exc)
        if not ok or image is None or not isinstance(image, np.ndarray) or image.size == 0:
            self._bad_reads += 1
            if self._bad_reads >= self._max_bad_reads:
                self._drop(f"camera {self._describe()} stopped sending frames")
            return None
        self._bad_reads = 0
        return _frame(image, self.camera_id)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._state = "closed"


# ------------------------------------------------------------------- files and folders


class VideoFileSource(_SourceState):
    """A recorded video played frame by frame, looping by default (replaying a shift)."""

    live = False

    def __init__(self, path: Path | str, camera_id: str = "cam0", *, loop: bool = True) -> None:
        self.path = Path(path)
        self.camera_id = camera_id
        self.loop = loop
        self.description = str(self.path)
        self._cap: cv2.VideoCapture | None = None
        self._state = "closed"
        self._error: str | None = None
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
        return _frame(image, self.camera_id)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
        self._state = "closed"


class FolderSource(_SourceState):
    """A folder of images replayed in name order, looping by default.

    Unreadable files are skipped with a warning rather than stopping the replay.
    """

    live = False

    def __init__(self, path: Path | str, camera_id: str = "cam0", *, loop: bool = True) -> None:
        self.path = Path(path)
        self.camera_id = camera_id
        self.loop = loop
        self.description = str(self.path)
        self.files: list[Path] = []
        self._index = 0
        self._state = "closed"
        self._error: str | None = None

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
            frame = _frame(image, self.camera_id)
            if frame is not None:
                return frame
        self._state = "failed"
        self._error = f"no readable image in {self.path}"
        return None

    def close(self) -> None:
        self._state = "closed"


# --------------------------------------------------------------------- synthetic bench


class BenchLike(Protocol):
    """The synthetic engine's bench: an empty scene and rendered items on it."""

    def empty(self) -> Image: ...

    def sample(self, item_seed: int, *, family: str | None = None, defect_free: bool | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class BenchSchedule:
    """How long each phase of one synthetic item lasts, in seconds."""

    empty_s: float = 3.0
    enter_s: float = 0.8
    still_s: float = 6.0
    leave_s: float = 0.8

    def __post_init__(self) -> None:
        if min(self.empty_s, self.still_s) <= 0 or min(self.enter_s, self.leave_s) < 0:
            raise SourceError("synthetic schedule: empty and still must be > 0, enter and leave >= 0")


def _default_bench(seed: int, size: tuple[int, int]) -> BenchLike:
    try:
        from inspector.data.synth import Bench
    except ImportError as exc:  # pragma: no cover - depends on the installed build
        raise SourceError(f"the synthetic bench camera needs inspector.data.synth ({exc})") from exc
    bench: BenchLike = Bench(seed, size=size)
    return bench


@dataclass(frozen=True, slots=True)
class _Item:
    cycle: int
    image: npt.NDArray[np.float32]
    alpha: npt.NDArray[np.float32]  # HxWx1: how much of the item covers each pixel
    box: tuple[int, int, int, int]
    still: Image  # the scene with the item at rest
    meta: dict[str, Any]


class SyntheticBenchSource(_SourceState):
    """The built-in bench camera: items arrive, sit still, and are taken away, forever.

    One cycle per item: empty bench, the item slides in from the right, rests,
    then slides out to the left. Everything is a function of (seed, frame index),
    so a replay is identical; a little sensor noise on every frame keeps the
    stillness detection honest. ``last_rest_at`` is the wall-clock time at which
    the current item came to rest, for measuring the station's latency.
    """

    live = False

    def __init__(
        self,
        camera_id: str = "cam0",
        *,
        seed: int = 0,
        size: tuple[int, int] = (640, 480),
        fps: float = 20.0,
        schedule: BenchSchedule | None = None,
        noise: float = 2.0,
        bench: BenchLike | None = None,
        bench_factory: Callable[[int, tuple[int, int]], BenchLike] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.camera_id = camera_id
        self.description = f"synthetic (seed {seed})"
        self.seed = seed
        self.size = size
        self.fps = fps
        self.schedule = schedule or BenchSchedule()
        self._bench = bench
        self._bench_factory = bench_factory or _default_bench
        self._clock = clock
        self._noise_level = noise
        self._noise: list[tuple[Image, Image]] = []
        self._empty: Image | None = None
        self._current: _Item | None = None
        self._pending: dict[int, Future[_Item]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._state = "closed"
        self._error: str | None = None
        self.frame_index = 0
        self.phase = "empty"
        self.cycle = 0
        self.last_rest_at: float | None = None
        self.last_meta: dict[str, Any] = {}
        n = self._frames(self.schedule.empty_s)
        self._phase_frames = (
            n,
            self._frames(self.schedule.enter_s),
            self._frames(self.schedule.still_s),
            self._frames(self.schedule.leave_s),
        )

    def _frames(self, seconds: float) -> int:
        return max(0, round(seconds * self.fps))

    @property
    def cycle_frames(self) -> int:
        return max(1, sum(self._phase_frames))

    def open(self) -> None:
        if self._bench is None:
            self._bench = self._bench_factory(self.seed, self.size)
        self._empty = np.ascontiguousarray(self._bench.empty(), dtype=np.uint8)
        h, w = self._empty.shape[:2]
        rng = np.random.default_rng([self.seed, 7919])
        self._noise = []
        for _ in range(6):  # a small bank of noise fields keeps frames cheap and deterministic
            field = rng.normal(0.0, self._noise_level, (h, w, 3))
            self._noise.append((np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8)))
        self._current = None
        self._pending = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"synthetic-{self.camera_id}")
        self._state = "ok"

    def phase_at(self, index: int) -> tuple[int, str, float]:
        """(cycle, phase, progress 0..1) of frame ``index``.

        The last entering frame stops short of the resting place, so the first
        still frame is the first frame at rest (the latency is measured from it).
        """
        cycle, k = divmod(index, self.cycle_frames)
        for name, n in zip(("empty", "enter", "still", "leave"), self._phase_frames, strict=True):
            if k < n:
                return cycle, name, (k + 1) / (n + 1) if name == "enter" else (k + 1) / n
            k -= n
        return cycle, "empty", 1.0  # pragma: no cover - the phases add up to the cycle

    def _render_item(self, cycle: int) -> _Item:
        """Item ``cycle`` of this bench: its picture, a soft mask of what it adds to the bench, the still scene."""
        assert self._bench is not None and self._empty is not None
        empty = self._empty
        sample = self._bench.sample(self.seed * 100_003 + cycle)
        image = np.ascontiguousarray(sample.image, dtype=np.uint8)
        if image.shape != empty.shape:
            image = np.asarray(cv2.resize(image, (empty.shape[1], empty.shape[0])), dtype=np.uint8)
        # What the item brings (the item, its shadow, a slip lying next to it) moves as one piece;
        # the rest of the picture stays the empty bench, so nothing pops in when the item comes to rest.
        diff = cv2.absdiff(cv2.GaussianBlur(image, (5, 5), 0), cv2.GaussianBlur(empty, (5, 5), 0)).max(axis=2)
        hard = (diff > 20).astype(np.uint8)
        hard = cv2.morphologyEx(hard, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
        alpha = cv2.GaussianBlur(cv2.dilate(hard, np.ones((5, 5), np.uint8)).astype(np.float32), (7, 7), 0)
        alpha = np.asarray(alpha, dtype=np.float32)[..., None]
        ys, xs = np.nonzero(hard)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
        still = self._blend(image.astype(np.float32), alpha)
        meta = getattr(sample, "meta", None)
        return _Item(cycle, image.astype(np.float32), alpha, box, still, dict(meta) if isinstance(meta, dict) else {})

    def _blend(self, image: npt.NDArray[np.float32], alpha: npt.NDArray[np.float32]) -> Image:
        assert self._empty is not None
        empty = self._empty.astype(np.float32)
        return np.asarray(np.clip(empty + (image - empty) * alpha + 0.5, 0, 255), dtype=np.uint8)

    def _prefetch(self, cycle: int) -> None:
        """Render the next item while the bench is empty, so the camera never stalls on it."""
        if self._pool is None or cycle in self._pending or (self._current and self._current.cycle == cycle):
            return
        self._pending[cycle] = self._pool.submit(self._render_item, cycle)

    def _item(self, cycle: int) -> _Item:
        if self._current is None or self._current.cycle != cycle:
            future = self._pending.pop(cycle, None)
            self._current = future.result() if future is not None else self._render_item(cycle)
            self.last_meta = self._current.meta
            for stale in [c for c in self._pending if c < cycle]:
                self._pending.pop(stale).cancel()
        return self._current

    def render(self, index: int) -> Image:
        """The noiseless scene of frame ``index``."""
        assert self._empty is not None
        cycle, phase, progress = self.phase_at(index)
        if phase == "empty":
            return self._empty
        item = self._item(cycle)
        if phase == "still":
            return item.still
        h, w = self._empty.shape[:2]
        x1, _, x2, _ = item.box
        # enter: from beyond the right edge to the resting place; leave: on to beyond the left edge
        ease = 0.5 - 0.5 * math.cos(math.pi * progress)
        offset = round((1.0 - ease) * (w - x1)) if phase == "enter" else -round(ease * x2)
        shift = np.array([[1, 0, offset], [0, 1, 0]], dtype=np.float32)
        image = cv2.warpAffine(item.image, shift, (w, h), flags=cv2.INTER_NEAREST)
        alpha = cv2.warpAffine(item.alpha[..., 0], shift, (w, h), flags=cv2.INTER_NEAREST)
        return self._blend(np.asarray(image, dtype=np.float32), np.asarray(alpha, dtype=np.float32)[..., None])

    def read(self) -> Frame | None:
        if self._state != "ok":
            return None
        index = self.frame_index
        self.frame_index += 1
        cycle, phase, _ = self.phase_at(index)
        if phase == "empty":
            self._prefetch(cycle)
        if phase == "still" and self.phase != "still":
            self.last_rest_at = self._clock()
        self.cycle, self.phase = cycle, phase
        scene = self.render(index)
        plus, minus = self._noise[index % len(self._noise)]
        image = np.asarray(cv2.subtract(cv2.add(scene, plus), minus), dtype=np.uint8)
        return Frame(image=image, camera_id=self.camera_id, captured_at=utcnow())

    def close(self) -> None:
        self._state = "closed"
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# ------------------------------------------------------------------------------ factory


def _synthetic(spec: str, camera_id: str, seed: int, size: tuple[int, int], fps: float, **kw: Any) -> FrameSource:
    _, _, query = spec.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, strict_parsing=False).items()}
    known = {"seed", "empty", "enter", "still", "leave", "noise"}
    unknown = set(params) - known
    if unknown:
        raise SourceError(f"unknown synthetic camera option(s) {sorted(unknown)}; known: {sorted(known)}")
    try:
        base = BenchSchedule()
        schedule = BenchSchedule(
            empty_s=float(params.get("empty", base.empty_s)),
            enter_s=float(params.get("enter", base.enter_s)),
            still_s=float(params.get("still", base.still_s)),
            leave_s=float(params.get("leave", base.leave_s)),
        )
        seed = int(params.get("seed", seed))
        noise = float(params.get("noise", 2.0))
    except ValueError as exc:
        raise SourceError(f"bad synthetic camera spec {spec!r}: {exc}") from exc
    return SyntheticBenchSource(camera_id, seed=seed, size=size, fps=fps, schedule=schedule, noise=noise, **kw)


def open_source(
    spec: str,
    camera_id: str = "cam0",
    *,
    fps: float = 20.0,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    bench_factory: Callable[[int, tuple[int, int]], BenchLike] | None = None,
    capture_factory: Callable[[int | str], Capture] | None = None,
    loop: bool = True,
) -> FrameSource:
    """Build (not open) the source a spec names.

    ``synthetic`` (options: ``synthetic?seed=3&still=2&empty=1``), a device index
    (``0``), a device path (``/dev/video0``), a stream URL (``rtsp://``, ``http://``),
    a video file, or a folder of images.
    """
    spec = spec.strip()
    if not spec:
        raise SourceError("empty camera source spec")
    if spec == "synthetic" or spec.startswith("synthetic?"):
        kw: dict[str, Any] = {"bench_factory": bench_factory} if bench_factory else {}
        return _synthetic(spec, camera_id, seed, (width, height), fps, **kw)
    cv_kw: dict[str, Any] = {"width": width, "height": height, "fps": fps}
    if capture_factory is not None:
        cv_kw["capture_factory"] = capture_factory
    if spec.isdigit():
        return OpenCVSource(int(spec), camera_id, **cv_kw)
    if spec.lower().startswith(URL_SCHEMES):
        return OpenCVSource(spec, camera_id, **cv_kw)
    if spec.startswith("/dev/video"):
        return OpenCVSource(spec, camera_id, **cv_kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, camera_id, loop=loop)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{path} is a single image; give the folder that holds it to replay images")
        return VideoFileSource(path, camera_id, loop=loop)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise FileNotFoundError(f"video file not found: {path}")
    raise SourceError(
        f"camera source {spec!r} is not 'synthetic', a device index, a stream URL, a video file or a folder"
    )
