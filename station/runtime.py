"""The running station: its cameras, trigger, live view, captures and references, put together.

One station thread feeds the cameras' newest frames to the trigger, hands the
captures it takes to :class:`~station.capture.Captures`, carries out the
reference requests and encodes the live view. Every change the page cares about
bumps the version of :class:`~station.changes.Changes` and wakes the page's long poll.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inspector.config import TriggerConfig
from inspector.types import Detections, Frame
from station.cameras import Cameras
from station.capture import Captures, LinesOf, Submit
from station.changes import Changes
from station.labels import LabelReader
from station.liveview import LiveView
from station.references import References
from station.shiftcheck import ShiftCheckConfig
from station.sources import FrameSource
from station.trigger import Capture, Trigger, TriggerState

log = logging.getLogger(__name__)


class StationRuntime:
    """Cameras, trigger and submissions of one bench, driven by threads.

    ``submit`` runs on ``loop`` (the API's event loop); without a submit function
    the station still shows the live view and says that inspections are off.
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        *,
        specs: Sequence[str] | None = None,
        submit: Submit | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        fps: float = 20.0,
        trigger: TriggerConfig | None = None,
        shift_config: ShiftCheckConfig | None = None,
        reference_dir: Path | None = None,
        label_reader: LabelReader | None = None,
        lines_of: LinesOf | None = None,
        model_ready: Callable[[], bool | None] | None = None,
        station_id: str = "bench-1",
        jpeg_quality: int = 80,
        live_width: int | None = 960,
        history: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._wake = threading.Event()  # a new frame or a request for the station thread
        self._stop = threading.Event()
        self.changes = Changes(loop)
        changed = self.changes.bump
        self.cameras = Cameras(sources, specs=specs, fps=fps, on_frame=self._wake.set, changed=changed, clock=clock)
        self.trigger = Trigger(trigger)
        self.live = LiveView(jpeg_quality, live_width)
        self.capture = Captures(
            submit=submit,
            loop=loop,
            label_reader=label_reader,
            lines_of=lines_of,
            station_id=station_id,
            history=history,
            show=self._show_result,
            changed=changed,
            clock=clock,
        )
        self.references = References(reference_dir, config=shift_config, changed=changed, clock=clock)
        self._model_ready = model_ready
        self.station_id = station_id
        self._clock = clock
        self._manual = threading.Event()
        self._trigger_state = self.trigger.state
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is not None:
            self.changes.loop = self.capture.loop = loop
        self.started_at = self._clock()
        self.cameras.start()
        self._thread = threading.Thread(target=self._station_loop, name="station", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.cameras.stop(timeout)
        self.changes.bump()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ the station loop

    def _station_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._tick()
            except Exception:  # one bad frame must not end the station
                log.exception("station tick failed")
                self.capture.last_error = "internal error in the station loop (see the log)"
                self.changes.bump()

    def _tick(self) -> None:
        frames, fresh, lost = self.cameras.newest()
        if lost:  # a camera that dropped out must not lend its last frame to a capture
            self.trigger.forget(lost)
        if not frames:
            self._encode_live([])
            return
        now = self._clock()
        if self.references.on_frames(frames, bench_empty=self.trigger.state == TriggerState.EMPTY):
            for f in frames:
                self.trigger.set_reference(f.camera_id, f.image)
        capture: Capture | None = None
        if self._manual.is_set():
            self._manual.clear()
            capture = self.trigger.capture_now(now)
        elif fresh:
            capture = self.trigger.feed(frames, now)
        if self.trigger.state != self._trigger_state:
            if self.trigger.state in (TriggerState.EMPTY, TriggerState.MOTION):
                self.live.overlay = {}
            self._trigger_state = self.trigger.state
            self.changes.bump()
        if capture is not None:
            self.capture.handle(capture, self.cameras.rest_at())
        if fresh:
            self._encode_live(frames)

    def _encode_live(self, frames: list[Frame]) -> None:
        label = self.trigger.state.value + ("  inspecting..." if self.capture.in_flight else "")
        self.live.encode(frames, label)

    def _show_result(self, overlay: dict[str, Detections]) -> None:
        """Draw the newest capture's detections while its item is still on the bench."""
        if self.trigger.state == TriggerState.CAPTURED:
            self.live.overlay = overlay

    # ------------------------------------------------------------------ what the page asks

    def release_waiters(self) -> None:
        """Wake every long poll now (the server is stopping); safe from any thread."""
        self.changes.release()

    async def wait_for_change(self, after: int, timeout: float) -> None:
        """Return once the status version moved past ``after``, or after ``timeout`` seconds."""
        if not self.stopped:
            await self.changes.wait(after, timeout)

    def latest_jpeg(self) -> tuple[int, bytes | None]:
        return self.live.latest()

    def capture_jpeg(self, n: int) -> bytes | None:
        return self.capture.jpeg(n)

    @property
    def camera_ready(self) -> bool:
        return self.cameras.ready

    def request_capture(self) -> None:
        """The manual capture key: inspect what is on the bench now."""
        self._manual.set()
        self._wake.set()

    def set_item(self, rma: str | None, lpn: str | None, line: int | None = None) -> None:
        self.capture.set_item(rma, lpn, line)

    def choose_line(self, line: int | None) -> str:
        """The return line the operator picked: for the capture waiting for it, else the next one."""
        return self.capture.choose_line(line)

    def request_shift_check(self) -> None:
        self.references.request_check()
        self._wake.set()

    def store_reference(self) -> bool:
        """Take the current view as the empty-bench reference; refused while an item is on the bench."""
        if self.trigger.state != TriggerState.EMPTY:
            return False
        self.references.request_store()
        self._wake.set()
        return True

    def model_ready(self) -> bool | None:
        if self._model_ready is None:
            return None
        try:
            return self._model_ready()
        except Exception:
            return False

    def status(self) -> dict[str, Any]:
        cams = self.cameras.status()
        captures = self.capture.status()
        return {
            "version": self.changes.version,
            "station_id": self.station_id,
            "now": self._clock(),
            "cameras": cams,
            "camera_ready": all(c["healthy"] for c in cams),
            "model_ready": self.model_ready(),
            "inspections_enabled": captures.pop("inspections_enabled"),
            "trigger": {"state": self.trigger.state.value, "captures": self.trigger.captures},
            "busy": captures.pop("busy"),
            "item": captures.pop("item"),
            "awaiting_line": captures.pop("awaiting_line"),
            "labels": captures.pop("labels"),
            "shift_check": self.references.status(),
            **captures,
        }
