"""The built-in synthetic bench camera: rendered items arrive, rest and leave, forever."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import cv2
import numpy as np
import numpy.typing as npt

from inspector.types import Frame, Image, utcnow
from station.sources.base import SourceError, SourceState

log = logging.getLogger(__name__)

ItemHook = Callable[[dict[str, Any]], None]
"""Told of every item the bench renders (its metadata: family, codes on its slip and stickers), before it enters."""


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
    """One rendered item, kept as the patch of the frame it covers: a moving frame blends only that."""

    cycle: int
    image: Image  # the item's picture, over the patch
    alpha: npt.NDArray[np.float32]  # how much of the item covers each pixel of the patch
    bare: npt.NDArray[np.float32]  # 1 - alpha: how much of the bench shows through
    origin: tuple[int, int]  # (x, y) of the patch's top-left corner in the frame, the item at rest
    box: tuple[int, int, int, int]
    still: Image  # the scene with the item at rest
    meta: dict[str, Any]


class SyntheticBenchSource(SourceState):
    """The built-in bench camera: items arrive, sit still, and are taken away, forever.

    One cycle per item: empty bench, the item slides in from the right, rests,
    then slides out to the left. Everything is a function of (seed, frame index),
    so a replay is identical; a little sensor noise on every frame keeps the
    stillness detection honest. ``last_rest_at`` is the wall-clock time at which
    the current item came to rest, for measuring the station's latency.
    ``on_item`` hears of each item as it is rendered, before it enters (the embedded
    demo announces the return slip's RMA as an expected return there).
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
        on_item: ItemHook | None = None,
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
        self.on_item = on_item
        self.slip_share: float | None = None  # the bench's share of items with a return slip; None = its own
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
        if self.slip_share is not None and hasattr(self._bench, "slip_share"):
            self._bench.slip_share = self.slip_share
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
        # the first item is rendered before the first frame: on a busy machine a 1280x960 render
        # can outlast the first empty bench, and the stream would stall where it enters
        self._item(self.phase_at(self.frame_index)[0])
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
        alpha = np.asarray(alpha, dtype=np.float32)
        ys, xs = np.nonzero(hard)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
        # outside the patch the item adds nothing (alpha 0): a frame is the empty bench there
        ys, xs = np.nonzero(alpha)
        x0, y0, x1, y1 = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0,) * 4
        patch = np.ascontiguousarray(image[y0:y1, x0:x1])
        cover = np.ascontiguousarray(alpha[y0:y1, x0:x1], dtype=np.float32)
        bare = np.ascontiguousarray(1.0 - cover, dtype=np.float32)
        still = empty.copy()
        still[y0:y1, x0:x1] = _blend(empty[y0:y1, x0:x1], patch, cover, bare)
        meta = getattr(sample, "meta", None)
        meta = dict(meta) if isinstance(meta, dict) else {}
        if self.on_item is not None:
            try:
                self.on_item(meta)
            except Exception:  # the camera goes on whatever a listener does
                log.exception("the synthetic bench's item listener failed")
        return _Item(cycle, patch, cover, bare, (x0, y0), box, still, meta)

    def _prefetch(self, cycle: int) -> None:
        """Render item ``cycle`` on the pool, so the camera never stalls on it.

        A 1280x960 item takes 1 to 3 s on 2 busy cores: the next item is asked for halfway through
        the current one's rest (after its capture), so it has that, the leaving and the empty bench.
        """
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
        w = self._empty.shape[1]
        x1, _, x2, _ = item.box
        # enter: from beyond the right edge to the resting place; leave: on to beyond the left edge
        ease = 0.5 - 0.5 * math.cos(math.pi * progress)
        offset = round((1.0 - ease) * (w - x1)) if phase == "enter" else -round(ease * x2)
        # a whole-pixel shift of the patch: only the columns of it still in the frame are blended
        ph, pw = item.alpha.shape[:2]
        left, top = item.origin[0] + offset, item.origin[1]
        a, b = max(0, left), min(w, left + pw)
        out = self._empty.copy()
        if a < b:
            cols = slice(a - left, b - left)
            region = out[top : top + ph, a:b]
            out[top : top + ph, a:b] = _blend(region, item.image[:, cols], item.alpha[:, cols], item.bare[:, cols])
        return out

    def read(self) -> Frame | None:
        if self._state != "ok":
            return None
        index = self.frame_index
        self.frame_index += 1
        cycle, phase, progress = self.phase_at(index)
        if phase == "empty":
            self._prefetch(cycle)
        elif phase == "leave" or (phase == "still" and progress >= 0.5):
            self._prefetch(cycle + 1)
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


def _blend(empty: Image, image: Image, alpha: npt.NDArray[np.float32], bare: npt.NDArray[np.float32]) -> Image:
    """The item over the bench, as much as ``alpha`` covers each pixel.

    One OpenCV pass, a quarter of the time of numpy's float arithmetic on a 1280x960 item (which
    covers most of the frame with its shadow): the camera keeps its rate while an item moves.
    """
    return np.asarray(cv2.blendLinear(empty, image, bare, alpha), dtype=np.uint8)


def from_spec(
    spec: str, camera_id: str, seed: int, size: tuple[int, int], fps: float, **kw: Any
) -> SyntheticBenchSource:
    """The synthetic camera a spec such as ``synthetic?seed=3&still=2&empty=1&size=1280x960`` names.

    ``size`` overrides the configured camera size for this camera (bench cameras are 5 MP and more).
    """
    _, _, query = spec.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query, strict_parsing=False).items()}
    known = {"seed", "empty", "enter", "still", "leave", "noise", "size"}
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
        if "size" in params:
            w, _, h = params["size"].lower().partition("x")
            size = (int(w), int(h))
            if min(size) < 64:
                raise ValueError(f"size {params['size']} is under 64 px on a side")
    except ValueError as exc:
        raise SourceError(f"bad synthetic camera spec {spec!r}: {exc}") from exc
    return SyntheticBenchSource(camera_id, seed=seed, size=size, fps=fps, schedule=schedule, noise=noise, **kw)
