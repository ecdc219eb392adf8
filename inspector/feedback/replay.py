"""``inspector replay``: stored inspections through another model or policy, and what would change.

The stored images go through a pipeline built like the station's, with the model and/or
the policy swapped; the outcome is compared with the recommendation as first served.
Nothing is written to the store. :func:`diff` is the pure part.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.config import Settings
from inspector.detect.base import Detector
from inspector.items import ItemInfo
from inspector.store.images import ImageStore


@dataclass(frozen=True, slots=True)
class Outcome:
    """One inspection replayed: the recommendation then and now."""

    inspection_id: str
    old_grade: str
    new_grade: str
    old_disposition: str
    new_disposition: str
    old_value: float
    new_value: float
    final_grade: str | None = None  # the operator's decision, when there was one
    final_disposition: str | None = None


def diff(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """How many grades and dispositions change, the transitions, and the change in expected recovery value."""
    grade_moves: Counter[str] = Counter()
    disp_moves: Counter[str] = Counter()
    agree_old = agree_new = decided = 0
    for o in outcomes:
        if o.old_grade != o.new_grade:
            grade_moves[f"{o.old_grade}->{o.new_grade}"] += 1
        if o.old_disposition != o.new_disposition:
            disp_moves[f"{o.old_disposition}->{o.new_disposition}"] += 1
        if o.final_grade is not None:
            decided += 1
            agree_old += o.final_grade == o.old_grade
            agree_new += o.final_grade == o.new_grade
    old_total = sum(o.old_value for o in outcomes)
    new_total = sum(o.new_value for o in outcomes)
    return {
        "inspections": len(outcomes),
        "grades_changed": sum(grade_moves.values()),
        "dispositions_changed": sum(disp_moves.values()),
        "grade_changes": dict(grade_moves.most_common()),
        "disposition_changes": dict(disp_moves.most_common()),
        "expected_value": {
            "before": round(old_total, 2),
            "after": round(new_total, 2),
            "difference": round(new_total - old_total, 2),
            "per_inspection": round((new_total - old_total) / len(outcomes), 2) if outcomes else 0.0,
        },
        "operator_agreement": {
            "decided": decided,
            "grade_before": agree_old / decided if decided else None,
            "grade_after": agree_new / decided if decided else None,
        },
    }


def item_of(stored: Mapping[str, Any]) -> ItemInfo:
    """The item as the station knew it, from the stored recommendation."""
    return ItemInfo(
        rma=stored.get("rma"),
        lpn=stored.get("lpn"),
        sku=stored.get("sku"),
        category=stored.get("category"),
        return_reason=stored.get("return_reason"),
        price=stored.get("price"),
        days_since_sale=stored.get("days_since_sale"),
        flags=frozenset(stored.get("flags") or ()),
    )


def replay_settings(settings: Settings, *, model: str | None, policy: Path | None) -> Settings:
    """A copy of the station's settings with the model and/or the policy swapped."""
    out = settings.model_copy(deep=True)
    if model is not None:
        out.detector.model = model
    if policy is not None:
        out.disposition.policy_file = policy
    return out


def replay(
    inspections: Iterable[Mapping[str, Any]],
    images: ImageStore,
    settings: Settings,
    *,
    detector: Detector | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[Outcome], str, str]:
    """Run every stored inspection through the pipeline ``settings`` describe; (outcomes, model, policy).

    ``detector`` replaces the model the settings name (tests, or a detector already loaded).
    """
    from inspector.imageio import decode_image
    from inspector.pipeline import build_pipeline
    from inspector.types import Frame

    pipeline = build_pipeline(settings, detector=detector)
    outcomes: list[Outcome] = []
    for k, stored in enumerate(inspections):
        frames = []
        for view in stored.get("views", []):
            digest = (view.get("stored") or view.get("image") or {}).get("sha256")
            if not digest:
                raise ValueError(f"inspection {stored['id']} view {view.get('n')} has no stored image")
            data = images.path_for(digest).read_bytes()
            frames.append(Frame(image=decode_image(data), camera_id=str(view.get("camera_id", f"view{view['n']}"))))
        result = pipeline.inspect(frames, item_of(stored.get("item") or {}), inspection_id=str(stored["id"]))
        final = stored.get("final") or {}
        outcomes.append(
            Outcome(
                inspection_id=str(stored["id"]),
                old_grade=str(stored["grade"]["level"]),
                new_grade=result.grade.level.value,
                old_disposition=str(stored["disposition"]["path"]),
                new_disposition=result.disposition.path.value,
                old_value=float(stored["disposition"]["expected_value"]),
                new_value=round(float(result.disposition.expected_value), 2),  # as stored
                final_grade=final.get("grade") if final.get("decided") else None,
                final_disposition=final.get("disposition") if final.get("decided") else None,
            )
        )
        if on_progress is not None:
            on_progress(k + 1)
    return outcomes, pipeline.model_version, pipeline.policy_version
