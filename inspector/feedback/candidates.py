"""Label candidates: the views an operator disagreed with, found in the record; pure, no I/O.

An override of the grade or disposition puts every view of that inspection up for
relabelling; a "missed defect" or "false defect" flag puts the flagged view up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Candidate:
    """One view to relabel and why (``reasons``, e.g. override, missed_defect, near_threshold)."""

    inspection_id: str
    view: int
    day: date
    reasons: tuple[str, ...]
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "view": self.view,
            "day": self.day.isoformat(),
            "reasons": list(self.reasons),
            **dict(self.detail),
        }


def day_of(inspection: Mapping[str, Any]) -> date:
    return datetime.fromisoformat(str(inspection["created_at"])).date()


def disagreements(inspection: Mapping[str, Any]) -> dict[int, list[str]]:
    """Per view, the operator's reasons to doubt the model: overrides and flags."""
    views = [int(v["n"]) for v in inspection.get("views", [])]
    out: dict[int, list[str]] = {}
    if any(d.get("action") == "override" for d in inspection.get("decisions", [])):
        for n in views:
            out.setdefault(n, []).append("override")
    for flag in inspection.get("flags", []):
        n = int(flag.get("view", 0))
        if n in views and flag.get("kind") not in out.get(n, []):
            out.setdefault(n, []).append(str(flag["kind"]))
    return out


def label_candidates(inspections: Iterable[Mapping[str, Any]]) -> list[Candidate]:
    """Every view with an override or a flag, oldest inspection first."""
    out = []
    for insp in inspections:
        for n, reasons in sorted(disagreements(insp).items()):
            out.append(Candidate(str(insp["id"]), n, day_of(insp), tuple(reasons)))
    return out


def merge(*groups: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per view, with the reasons of every group that named it, in first-seen order."""
    found: dict[tuple[str, int], Candidate] = {}
    for group in groups:
        for c in group:
            key = (c.inspection_id, c.view)
            if key in found:
                old = found[key]
                reasons = old.reasons + tuple(r for r in c.reasons if r not in old.reasons)
                found[key] = Candidate(old.inspection_id, old.view, old.day, reasons, {**c.detail, **old.detail})
            else:
                found[key] = c
    return list(found.values())
