"""Small stand-ins for the station tests: a bench scene, a failing camera, an inspection service."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from inspector.errors import Unavailable
from inspector.items import ItemInfo
from inspector.types import (
    Detections,
    Disposition,
    DispositionPath,
    FloatArray,
    Frame,
    Grade,
    GradeLevel,
    Image,
    Inspection,
    IntArray,
    View,
)


def textured_bench(w: int = 640, h: int = 480, seed: int = 0) -> Image:
    """A bench mat with structure at several scales (grid, speckle), like a real cutting mat."""
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), np.uint8)
    base[:] = (96, 110, 92)
    for x in range(0, w, 40):
        cv2.line(base, (x, 0), (x, h - 1), (70, 84, 66), 1)
    for y in range(0, h, 40):
        cv2.line(base, (0, y), (w - 1, y), (70, 84, 66), 1)
    for _ in range(60):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(base, (x, y), int(rng.integers(2, 9)), tuple(int(v) for v in rng.integers(40, 200, 3)), -1)
    speckle = rng.integers(-10, 11, (h, w, 1)).astype(np.int16)
    return np.clip(base.astype(np.int16) + speckle, 0, 255).astype(np.uint8)


@dataclass
class Sample:
    image: Image
    clean: Image
    xyxy: FloatArray
    class_ids: IntArray
    meta: dict[str, Any] = field(default_factory=dict)


def rma_for(item_seed: int) -> str:
    """The RMA printed on the stand-in item's label."""
    return f"RMA-{item_seed % 1_000_000:06d}"


def qr_label(text: str, module_px: int = 2) -> Image:
    code = cv2.QRCodeEncoder.create().encode(text)
    code = cv2.resize(code, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    bordered = cv2.copyMakeBorder(code, 12, 12, 12, 12, cv2.BORDER_CONSTANT, value=255)
    return np.asarray(cv2.cvtColor(bordered, cv2.COLOR_GRAY2BGR), dtype=np.uint8)


class StandinBench:
    """The synthetic engine's interface (empty, sample) with a box-shaped item and one scratch.

    With ``labels`` the item carries a QR label with its RMA (see :func:`rma_for`).
    """

    def __init__(self, seed: int = 0, size: tuple[int, int] = (640, 480), labels: bool = False) -> None:
        self.seed = seed
        self.size = size
        self.labels = labels
        self._empty = textured_bench(size[0], size[1], seed)

    def empty(self) -> Image:
        return self._empty.copy()

    def sample(self, item_seed: int, *, family: str | None = None, defect_free: bool | None = None) -> Sample:
        rng = np.random.default_rng(item_seed)
        w, h = self.size
        bw, bh = int(rng.integers(w // 4, w // 2)), int(rng.integers(h // 4, h // 2))
        x1, y1 = int(rng.integers(40, w - bw - 40)), int(rng.integers(40, h - bh - 40))
        image = self._empty.copy()
        colour = tuple(int(v) for v in rng.integers(150, 250, 3))
        cv2.rectangle(image, (x1, y1), (x1 + bw, y1 + bh), colour, -1)
        cv2.putText(image, "ITEM", (x1 + 10, y1 + 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (20, 20, 20), 2)
        if self.labels:
            label = qr_label(rma_for(item_seed))
            lh, lw = label.shape[:2]
            lx, ly = x1 + bw - lw - 8, y1 + 8
            if lx > x1 and ly + lh < y1 + bh:
                image[ly : ly + lh, lx : lx + lw] = label
        clean = image.copy()
        sx = x1 + bw // 3
        cv2.line(image, (sx, y1 + 3 * bh // 4), (sx + bw // 3, y1 + 3 * bh // 4 + 8), (40, 40, 40), 2)
        xyxy = np.array(
            [[x1, y1, x1 + bw, y1 + bh], [sx - 2, y1 + 3 * bh // 4 - 2, sx + bw // 3 + 2, y1 + 3 * bh // 4 + 10]],
            np.float32,
        )
        return Sample(image, clean, xyxy, np.array([0, 1]), {"family": family or "boxed", "item_seed": item_seed})


def bench_factory(seed: int, size: tuple[int, int]) -> StandinBench:
    return StandinBench(seed, size)


class FlakyCapture:
    """A camera that delivers ``good`` frames, then fails; opening fails while ``down``."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.opened = not plan.get("down", False)
        self.reads = 0
        plan["opens"] = plan.get("opens", 0) + 1

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, Any]:
        self.reads += 1
        if self.plan.get("broken"):
            return False, None
        return True, np.full((48, 64, 3), 100, np.uint8)

    def release(self) -> None:
        self.opened = False

    def set(self, prop_id: int, value: float) -> bool:
        return True


def inspection_of(frames: list[Frame], item: ItemInfo) -> Inspection:
    """An inspection as the pipeline returns it: graded B, open-box, with the item and one scratch on every view."""
    dets = Detections(
        xyxy=np.array([[50.0, 40.0, 300.0, 260.0], [120.0, 100.0, 180.0, 120.0]], np.float32),
        confidence=np.array([0.91, 0.77], np.float32),
        class_id=np.array([0, 1], np.int64),
        class_names=("item", "scratch"),
    )
    return Inspection(
        id=uuid.uuid4().hex,
        views=tuple(View(frame=f, detections=dets) for f in frames),
        grade=Grade(level=GradeLevel.B, probabilities={GradeLevel.A: 0.1, GradeLevel.B: 0.7, GradeLevel.C: 0.2}),
        disposition=Disposition(path=DispositionPath.OPEN_BOX, expected_value=61.5, policy_version="test"),
        model_version="test",
        item={"rma": item.rma, "lpn": item.lpn},
    )


class FakeInspections:
    """The API's in-process inspection service, recording what the station submits."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.created: list[Inspection] = []
        self.calls: list[tuple[list[Frame], ItemInfo, str | None, str]] = []

    async def create(
        self, frames: list[Frame], item: ItemInfo, *, idempotency_key: str | None = None, source: str = "station"
    ) -> Inspection:
        self.calls.append((frames, item, idempotency_key, source))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise Unavailable("the model is not loaded", code="model_not_ready", retry_after=30)
        result = inspection_of(frames, item)
        self.created.append(result)
        return result
