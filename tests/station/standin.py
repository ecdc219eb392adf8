"""Small stand-ins for the station tests: a bench scene, a failing camera, an inspection service."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np

from inspector.items import ItemInfo
from inspector.types import Frame


def textured_bench(w: int = 640, h: int = 480, seed: int = 0) -> np.ndarray:
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
    image: np.ndarray
    clean: np.ndarray
    xyxy: np.ndarray
    class_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def rma_for(item_seed: int) -> str:
    """The RMA printed on the stand-in item's label."""
    return f"RMA-{item_seed % 1_000_000:06d}"


def qr_label(text: str, module_px: int = 2) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(text)
    code = cv2.resize(code, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.copyMakeBorder(code, 12, 12, 12, 12, cv2.BORDER_CONSTANT, value=255), cv2.COLOR_GRAY2BGR)


class StandinBench:
    """The synthetic engine's interface (empty, sample) with a box-shaped item and one scratch.

    With ``labels`` the item carries a QR label with its RMA (see :func:`rma_for`).
    """

    def __init__(self, seed: int = 0, size: tuple[int, int] = (640, 480), labels: bool = False) -> None:
        self.seed = seed
        self.size = size
        self.labels = labels
        self._empty = textured_bench(size[0], size[1], seed)

    def empty(self) -> np.ndarray:
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


def inspection_json(frames: list[Frame], item: ItemInfo, *, grade: str = "B", path: str = "OPEN_BOX") -> dict[str, Any]:
    """An inspection in the API's JSON shape, with one scratch per view."""
    iid = uuid.uuid4().hex
    views = []
    for n, f in enumerate(frames):
        h, w = f.image.shape[:2]
        views.append(
            {
                "n": n,
                "camera_id": f.camera_id,
                "captured_at": f.captured_at.isoformat(),
                "width": w,
                "height": h,
                "image_url": f"/v1/inspections/{iid}/images/{n}",
                "annotated_url": f"/v1/inspections/{iid}/images/{n}?annotated=1",
                "detections": [
                    {
                        "index": 0,
                        "xyxy": [50.0, 40.0, 300.0, 260.0],
                        "confidence": 0.91,
                        "class_id": 0,
                        "class_name": "item",
                    },
                    {
                        "index": 1,
                        "xyxy": [120.0, 100.0, 180.0, 120.0],
                        "confidence": 0.77,
                        "class_id": 1,
                        "class_name": "scratch",
                    },
                ],
            }
        )
    return {
        "id": iid,
        "created_at": datetime.now(UTC).isoformat(),
        "station_id": "bench-1",
        "source": "station",
        "item": {"rma": item.rma, "lpn": item.lpn},
        "views": views,
        "grade": {
            "level": grade,
            "confidence": 0.7,
            "probabilities": {"A": 0.1, "B": 0.7, "C": 0.2},
            "reasons": [{"code": "scratch", "text": "one light scratch on the front", "detections": [[0, 1]]}],
            "rubric_version": "test",
            "source": "rubric",
        },
        "disposition": {
            "path": path,
            "expected_value": 61.5,
            "expected_regret": 3.0,
            "rule": None,
            "reasons": [{"code": "best_value", "text": "open-box recovers the most", "detections": []}],
            "alternatives": [
                {"path": "OPEN_BOX", "expected_value": 61.5, "allowed": True, "note": ""},
                {"path": "REFURBISH", "expected_value": 55.0, "allowed": True, "note": ""},
                {"path": "LIQUIDATE", "expected_value": 20.0, "allowed": True, "note": ""},
                {"path": "RESTOCK", "expected_value": 80.0, "allowed": False, "note": "not like new"},
            ],
            "policy_version": "test",
        },
        "versions": {"model": "test", "policy": "test", "rubric": "test"},
        "timings_ms": {"total": 5.0},
        "decisions": [],
        "final": {"grade": grade, "disposition": path, "decided": False},
    }


class FakeInspections:
    """The API's in-process inspection service, recording what the station submits."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.created: list[dict[str, Any]] = []
        self.calls: list[tuple[list[Frame], ItemInfo, str | None, str]] = []
        self.decisions: list[tuple[str, dict[str, Any]]] = []

    async def create(
        self, frames: list[Frame], item: ItemInfo, *, idempotency_key: str | None = None, source: str = "station"
    ) -> dict[str, Any]:
        self.calls.append((frames, item, idempotency_key, source))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("the model is not loaded")
        result = inspection_json(frames, item)
        self.created.append(result)
        return result

    async def decide(self, inspection_id: str, body: dict[str, Any], actor: str) -> dict[str, Any]:
        self.decisions.append((inspection_id, body))
        return {"id": inspection_id, "action": body.get("action")}
