"""The bench cameras: one reader thread per source, keeping only its newest frame.

A slow consumer never builds a queue of stale frames: each thread overwrites its
camera's latest frame. A source that cannot be opened is retried; files, folders
and the synthetic bench are paced at the configured rate, live cameras pace themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inspector.types import Frame
from station.sources import FrameSource, mask_url

log = logging.getLogger(__name__)

STALE_S = 2.0
"""A camera whose newest frame is older than this lends it to nothing."""


@dataclass(slots=True)
class CameraFeed:
    """One camera, its newest frame and its health as the page shows it."""

    source: FrameSource
    spec: str
    latest: Frame | None = None
    seq: int = 0
    fed_seq: int = 0
    latest_at: float = 0.0
    fps: float = 0.0
    times: deque[float] = field(default_factory=lambda: deque(maxlen=31))  # arrival of the last frames
    state: str = "starting"
    error: str | None = None
    thread: threading.Thread | None = None


class Cameras:
    """The reader threads of every camera of a bench.

    ``on_frame`` is called from a reader thread after each new frame; ``changed``
    when a camera's state or error changes.
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        *,
        specs: Sequence[str] | None = None,
        fps: float = 20.0,
        on_frame: Callable[[], None],
        changed: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not sources:
            raise ValueError("the station needs at least one camera source")
        ids = [s.camera_id for s in sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"camera ids must be unique, got {ids}")
        spec_list = (
            list(specs) if specs is not None else [str(getattr(s, "description", type(s).__name__)) for s in sources]
        )
        # whatever the caller passes, a camera URL is shown without its credentials
        self.feeds = [CameraFeed(s, mask_url(spec)) for s, spec in zip(sources, spec_list, strict=True)]
        self.fps = fps
        self._on_frame = on_frame
        self._changed = changed
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        for cam in self.feeds:
            cam.thread = threading.Thread(
                target=self._read_loop, args=(cam,), name=f"camera-{cam.source.camera_id}", daemon=True
            )
            cam.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the reader threads and close every source."""
        self._stop.set()
        for cam in self.feeds:
            if cam.thread is not None:
                cam.thread.join(timeout)
        for cam in self.feeds:
            try:
                cam.source.close()
            except Exception:  # closing must not stop the others closing
                log.exception("closing camera %s failed", cam.source.camera_id)

    def _read_loop(self, cam: CameraFeed) -> None:
        src = cam.source
        period = 1.0 / self.fps
        next_at = time.monotonic()
        opened = False
        while not self._stop.is_set():
            if not opened:
                try:
                    src.open()
                    opened = True
                except Exception as exc:  # a missing file or unusable device: say so, retry later
                    self._set_state(cam, "failed", str(exc))
                    self._stop.wait(5.0)
                    continue
            if not src.live:  # files, folders and the synthetic bench play at the configured rate
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                # a late frame does not make the next one early: frames start at least a period apart
                next_at = max(next_at, time.monotonic()) + period
            frame = src.read()
            if frame is None:
                self._set_state(cam, src.state, src.last_error)
                self._stop.wait(0.05 if src.live else 0.5)
                continue
            now = time.monotonic()
            with self._lock:
                cam.latest = frame
                cam.seq += 1
                cam.latest_at = self._clock()
                cam.times.append(now)
                if len(cam.times) > 1 and cam.times[-1] > cam.times[0]:
                    cam.fps = (len(cam.times) - 1) / (cam.times[-1] - cam.times[0])
            self._set_state(cam, src.state, src.last_error)
            self._on_frame()

    def _set_state(self, cam: CameraFeed, state: str, error: str | None) -> None:
        if cam.state != state or cam.error != error:
            cam.state, cam.error = state, error
            self._changed()

    @property
    def ready(self) -> bool:
        return all(c.state == "ok" for c in self.feeds)

    def newest(self) -> tuple[list[Frame], bool, list[str]]:
        """The newest frame of every working camera, whether any of them is new, and the cameras without one."""
        frames: list[Frame] = []
        fresh = False
        lost: list[str] = []
        now = self._clock()
        with self._lock:
            for cam in self.feeds:
                if cam.latest is None or cam.state != "ok" or now - cam.latest_at > STALE_S:
                    lost.append(cam.source.camera_id)
                    continue
                frames.append(cam.latest)
                if cam.seq != cam.fed_seq:
                    fresh = True
                    cam.fed_seq = cam.seq
        return frames, fresh, lost

    def rest_at(self) -> float | None:
        """When the item came to rest, as the newest source that knows it says (the synthetic bench does)."""
        rest_at = None
        for cam in self.feeds:
            value = getattr(cam.source, "last_rest_at", None)
            if isinstance(value, float) and (rest_at is None or value > rest_at):
                rest_at = value
        return rest_at

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "camera_id": c.source.camera_id,
                    "source": c.spec,
                    "kind": type(c.source).__name__,
                    "state": c.state,
                    "healthy": c.state == "ok",
                    "error": c.error,
                    "fps": round(c.fps, 1),
                    "frames": c.seq,
                    "retry_in_s": round(float(getattr(c.source, "retry_in_s", 0.0)), 1),
                }
                for c in self.feeds
            ]
