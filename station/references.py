"""The empty-bench references: taking them, storing them, and checking the bench against them.

One PNG per camera under the reference directory. At the start of a shift the
empty bench is compared with its reference (a moved camera or changed lights is
warned about); a camera without a reference stores the view it has then.
Requests come from any thread and are carried out on the station thread, with
the frames it has.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspector.types import Frame, Image
from station.shiftcheck import ShiftCheck, ShiftCheckConfig, check_bench


class References:
    """The stored references of one bench and the last shift check against them.

    Without a ``reference_dir`` nothing is stored and every check runs without a reference.
    """

    def __init__(
        self,
        reference_dir: Path | None,
        *,
        config: ShiftCheckConfig | None = None,
        changed: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.reference_dir = reference_dir
        self._config = config or ShiftCheckConfig()
        self._changed = changed
        self._clock = clock
        self.shift: dict[str, ShiftCheck] = {}
        self.checked_at: float | None = None
        self._check_request = threading.Event()
        self._check_request.set()  # once at start
        self._store_request = threading.Event()

    def request_check(self) -> None:
        self._check_request.set()

    def request_store(self) -> None:
        self._store_request.set()

    def on_frames(self, frames: list[Frame], *, bench_empty: bool) -> bool:
        """Carry out what was requested with the newest ``frames``; True when they were stored as the references.

        A check waits for the empty bench; storing was refused earlier unless the bench was empty.
        """
        if self._check_request.is_set() and bench_empty:
            self._check_request.clear()
            self.check(frames, store_missing=True)
        if not self._store_request.is_set():
            return False
        self._store_request.clear()
        self.save(frames)
        self.check(frames, store_missing=False)
        return True

    def path(self, camera_id: str) -> Path | None:
        if self.reference_dir is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in camera_id)
        return self.reference_dir / f"reference-{safe}.png"

    def save(self, frames: list[Frame]) -> None:
        for f in frames:
            path = self.path(f.camera_id)
            if path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.png")
            if cv2.imwrite(str(tmp), f.image):
                tmp.replace(path)

    def check(self, frames: list[Frame], *, store_missing: bool) -> None:
        """Compare each view with its reference; with ``store_missing`` a view without one becomes it."""
        results: dict[str, ShiftCheck] = {}
        for f in frames:
            path = self.path(f.camera_id)
            reference: Image | None = None
            if path is not None and path.is_file():
                loaded = cv2.imread(str(path), cv2.IMREAD_COLOR)
                reference = None if loaded is None else np.asarray(loaded, dtype=np.uint8)
            results[f.camera_id] = check_bench(f.image, reference, f.camera_id, self._config)
            if reference is None and store_missing and path is not None:
                self.save([f])
        self.shift = results
        self.checked_at = self._clock()
        self._changed()

    def status(self) -> dict[str, Any]:
        warnings = [dict(w.to_dict(), camera_id=cid) for cid, chk in self.shift.items() for w in chk.warnings]
        return {
            "done": self.checked_at is not None,
            "checked_at": self.checked_at,
            "ok": not warnings,
            "warnings": warnings,
            "cameras": [chk.to_dict() for chk in self.shift.values()],
        }
