"""Inspection records as the store serves them, built by hand for the pure learning-loop logic."""

from __future__ import annotations

from typing import Any


def det(
    cls: str, conf: float, xyxy: tuple[float, float, float, float] = (10, 10, 50, 50), index: int = 0
) -> dict[str, Any]:
    return {"index": index, "class_name": cls, "class_id": 0, "confidence": conf, "xyxy": list(xyxy)}


def insp(
    iid: str,
    *,
    day: str = "2026-12-01",
    grade: str = "B",
    path: str = "OPEN_BOX",
    value: float = 50.0,
    views: list[list[dict[str, Any]]] | None = None,
    decisions: list[dict[str, Any]] | None = None,
    flags: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    views = views if views is not None else [[det("item", 0.9)]]
    return {
        "id": iid,
        "created_at": f"{day}T10:00:00+00:00",
        "grade": {"level": grade},
        "disposition": {"path": path, "expected_value": value},
        "versions": {"model": "m-1"},
        "views": [
            {"n": n, "width": 320, "height": 240, "detections": [{**d, "index": i} for i, d in enumerate(ds)]}
            for n, ds in enumerate(views)
        ],
        "decisions": decisions or [],
        "final": {"grade": grade, "disposition": path, "decided": bool(decisions)},
        "flags": flags or [],
    }


def override(grade: str = "C") -> dict[str, Any]:
    return {"action": "override", "grade": grade, "reason_code": "missed_damage"}


def accept() -> dict[str, Any]:
    return {"action": "accept"}
