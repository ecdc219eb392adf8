"""Active-learning sampling of stored views; pure, no I/O, deterministic for a seed.

Per day, in order of priority: model-operator disagreements (overrides, flags) and views
where the anomaly model saw damage no detection explains (``unexplained_damage``: the
detector may lack the class), rare classes, detections near the operating threshold
(closest first), then a capped random
sample of unremarkable views, so that the labelled set does not drift towards the odd
cases only. Every reason has its daily limit, and all together one more.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from inspector.config import SamplingConfig
from inspector.feedback.candidates import Candidate, day_of, disagreements

ITEM_CLASS = "item"


def class_shares(inspections: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Each defect class's share of all defect detections in the window (the item box is not a defect)."""
    counts: Counter[str] = Counter()
    for insp in inspections:
        for view in insp.get("views", []):
            for d in view.get("detections", []):
                if d["class_name"] != ITEM_CLASS:
                    counts[d["class_name"]] += 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def sample(
    inspections: Sequence[Mapping[str, Any]], cfg: SamplingConfig, *, threshold: float, seed: int | None = None
) -> list[Candidate]:
    """The views worth labelling, at most ``cfg.daily_limit`` per day, each with its reasons."""
    shares = class_shares(inspections)
    rare = {k for k, v in shares.items() if v < cfg.rare_class_share}
    by_day: dict[date, dict[str, list[tuple[float, Candidate]]]] = {}
    for insp in inspections:
        day = day_of(insp)
        buckets = by_day.setdefault(day, {"disagreement": [], "rare_class": [], "near_threshold": [], "random": []})
        doubts = disagreements(insp)
        for view in insp.get("views", []):
            n = int(view["n"])
            dets = view.get("detections", [])
            margins = [abs(float(d["confidence"]) - threshold) for d in dets if d["class_name"] != ITEM_CLASS]
            near = min(margins) if margins else None
            rare_here = sorted({d["class_name"] for d in dets if d["class_name"] in rare})
            detail: dict[str, Any] = {}
            if near is not None:
                detail["closest_margin"] = round(near, 4)
            if rare_here:
                detail["rare_classes"] = rare_here
            unexplained = len((view.get("anomaly") or {}).get("regions") or [])
            if unexplained:
                detail["unexplained_regions"] = unexplained
            cand = Candidate(str(insp["id"]), n, day, (), detail)
            if n in doubts:
                buckets["disagreement"].append((0.0, _with(cand, *doubts[n])))
            elif unexplained:
                buckets["disagreement"].append((0.0, _with(cand, "unexplained_damage")))
            elif rare_here:
                buckets["rare_class"].append((min(shares[c] for c in rare_here), _with(cand, "rare_class")))
            elif near is not None and near <= cfg.near_threshold_band:
                buckets["near_threshold"].append((near, _with(cand, "near_threshold")))
            else:
                buckets["random"].append((0.0, _with(cand, "random")))
    limits = {
        "disagreement": cfg.disagreement_per_day,
        "rare_class": cfg.rare_class_per_day,
        "near_threshold": cfg.near_threshold_per_day,
        "random": cfg.random_per_day,
    }
    rng = random.Random(cfg.seed if seed is None else seed)
    out: list[Candidate] = []
    for day in sorted(by_day):
        room = cfg.daily_limit
        for reason, rows in by_day[day].items():
            if reason == "random":
                picked = rng.sample(rows, min(len(rows), limits[reason], room))
            else:
                picked = sorted(rows, key=lambda r: r[0])[: min(limits[reason], room)]
            out.extend(c for _, c in picked)
            room -= len(picked)
    return out


def _with(c: Candidate, *reasons: str) -> Candidate:
    return Candidate(c.inspection_id, c.view, c.day, tuple(reasons), c.detail)
