"""Builders for grading and disposition tests: defects placed by item-relative position and area."""

from __future__ import annotations

import math
from collections.abc import Sequence

from inspector.types import Detections
from tests.builders import dets

ITEM_BOX = (100.0, 100.0, 300.0, 500.0)  # 200 x 400 px: a phone lying screen up
Row = tuple[str, float, tuple[float, float, float, float]]


def at(
    u: float, v: float, rel_area: float, box: tuple[float, float, float, float] = ITEM_BOX
) -> tuple[float, float, float, float]:
    """A square defect box centred at (u, v) in item-box fractions, covering rel_area of the item."""
    x1, y1, x2, y2 = box
    side = math.sqrt(rel_area * (x2 - x1) * (y2 - y1))
    cx, cy = x1 + u * (x2 - x1), y1 + v * (y2 - y1)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def defect(name: str, u: float, v: float, rel_area: float, conf: float = 0.95) -> Row:
    b = at(u, v, rel_area)
    return (name, conf, (b[0], b[1], b[2], b[3]))


def view(*defects: Row, item_conf: float = 0.97, box: tuple[float, float, float, float] = ITEM_BOX) -> Detections:
    """One view: the item box first (row 0), then the defects in order (rows 1..)."""
    return dets([("item", item_conf, box), *defects])


def bare(*rows: Row) -> Detections:
    return dets(list(rows))


def refs(grade_reasons: Sequence[object]) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for r in grade_reasons:
        out.update(r.detections)  # type: ignore[attr-defined]
    return out
