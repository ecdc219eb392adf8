"""The labelmap the detector's class ids refer to, so clients name and colour defects as the server does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from inspector.api.deps import AnyKey
from inspector.api.problems import Problem, responses
from inspector.api.schemas import LabelmapOut
from inspector.draw import colour_for
from inspector.labelmap import ITEM, default_labelmap

router = APIRouter(prefix="/v1/labelmap", tags=["labelmap"])


def _hex(class_id: int) -> str:
    b, g, r = colour_for(class_id)
    return f"#{r:02x}{g:02x}{b:02x}"


@router.get("", response_model=LabelmapOut, summary="Class names and colours", responses=responses(401, 403, 503))
def get_labelmap(_key: AnyKey) -> dict[str, Any]:
    """Every class in id order, with its description and the colour the live view draws it in."""
    try:
        labelmap = default_labelmap()
    except (OSError, ValueError) as exc:
        raise Problem(503, f"the labelmap cannot be read: {exc}", code="labelmap_unavailable") from exc
    classes = [
        {"id": i, "name": name, "description": desc, "defect": name != ITEM, "colour": _hex(i)}
        for i, (name, desc) in enumerate(zip(labelmap.names, labelmap.descriptions, strict=True))
    ]
    return {"version": labelmap.version, "classes": classes}
