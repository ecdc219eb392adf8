"""The camera readers with a scripted source and a clock: newest frames, stale cameras, health."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from inspector.types import Frame
from station.cameras import STALE_S, Cameras


class ScriptedSource:
    """A paced (not live) source that fails its first ``fail_opens`` opens, then delivers while ``delivering``."""

    live = False

    def __init__(self, camera_id: str, fail_opens: int = 0) -> None:
        self.camera_id = camera_id
        self.fail_opens = fail_opens
        self.opens = 0
        self.closed = False
        self.delivering = True
        self.last_rest_at = 3.0

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise OSError("not yet")

    def read(self) -> Frame | None:
        if not self.delivering:
            return None
        return Frame(np.zeros((8, 8, 3), np.uint8), camera_id=self.camera_id)

    def close(self) -> None:
        self.closed = True

    @property
    def healthy(self) -> bool:
        return self.delivering

    @property
    def state(self) -> str:
        return "ok" if self.delivering else "reconnecting"

    @property
    def last_error(self) -> str | None:
        return None if self.delivering else "unplugged"


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _cameras(source: ScriptedSource, now: list[float], arrived: threading.Event | None = None) -> Cameras:
    on_frame = arrived.set if arrived is not None else lambda: None
    return Cameras([source], fps=50, on_frame=on_frame, changed=lambda: None, clock=lambda: now[0])


def test_a_camera_that_does_not_open_is_reported_and_closed_on_stop() -> None:
    source = ScriptedSource("cam0", fail_opens=1)
    cameras = _cameras(source, [100.0])
    assert cameras.status()[0]["state"] == "starting" and not cameras.ready
    cameras.start()
    try:
        _until(lambda: cameras.status()[0]["state"] == "failed")
        assert cameras.status()[0]["error"] == "not yet" and cameras.newest() == ([], False, ["cam0"])
    finally:
        cameras.stop()  # does not wait out the retry delay
    assert source.closed and source.opens == 1


def test_the_newest_frame_is_lent_once_fresh_and_never_when_stale_or_lost() -> None:
    now = [100.0]
    arrived = threading.Event()
    source = ScriptedSource("cam0")
    cameras = _cameras(source, now, arrived)
    cameras.start()
    try:
        assert arrived.wait(5)
        _until(lambda: cameras.ready)
        frames, fresh, lost = cameras.newest()
        assert [f.camera_id for f in frames] == ["cam0"] and fresh and lost == []
        source.delivering = False
        _until(lambda: not cameras.ready)
        status = cameras.status()[0]
        assert (status["state"], status["error"], status["healthy"]) == ("reconnecting", "unplugged", False)
        assert cameras.newest() == ([], False, ["cam0"])
        source.delivering = True
        _until(lambda: cameras.ready)
    finally:
        cameras.stop()
    assert source.closed and cameras.rest_at() == 3.0
    frames, fresh, _ = cameras.newest()
    assert frames and fresh
    assert cameras.newest()[1] is False  # nothing new since
    now[0] += STALE_S + 1  # the camera's newest frame is old by the station's clock
    assert cameras.newest() == ([], False, ["cam0"])


def test_camera_lists_need_one_source_and_unique_ids() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Cameras([], on_frame=lambda: None, changed=lambda: None)
    with pytest.raises(ValueError, match="unique"):
        Cameras([ScriptedSource("cam0"), ScriptedSource("cam0")], on_frame=lambda: None, changed=lambda: None)
