"""Drift: a daily summary of what the station decides, and warnings when a figure moves; pure, no I/O.

Per day: the mix of grades and dispositions (shares of the recommendations), the mean
confidence of each detection class, and the override rate of each recommended grade.
The watched day is compared with the mean of the days before it (the baseline); a
figure that moves beyond its threshold in the configuration raises a warning.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from inspector.config import DriftConfig
from inspector.feedback.candidates import day_of


@dataclass(frozen=True, slots=True)
class DaySummary:
    day: date
    inspections: int
    grade_share: dict[str, float]
    disposition_share: dict[str, float]
    mean_confidence: dict[str, float]
    detections: dict[str, int]
    override_rate: dict[str, float]  # by recommended grade
    decided: dict[str, int]  # decisions taken, by recommended grade

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "inspections": self.inspections,
            "grade_share": self.grade_share,
            "disposition_share": self.disposition_share,
            "mean_confidence": self.mean_confidence,
            "detections": self.detections,
            "override_rate": self.override_rate,
            "decided": self.decided,
        }


@dataclass(frozen=True, slots=True)
class DriftWarning:
    metric: str  # grade_share | disposition_share | mean_confidence | override_rate
    key: str
    value: float
    baseline: float
    threshold: float

    @property
    def text(self) -> str:
        what = {
            "grade_share": f"share of grade {self.key}",
            "disposition_share": f"share of {self.key.replace('_', ' ')}",
            "mean_confidence": f"mean confidence of {self.key}",
            "override_rate": f"override rate of grade {self.key}",
        }[self.metric]
        return f"{what} is {self.value:.2f} against {self.baseline:.2f} before (threshold {self.threshold:.2f})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "key": self.key,
            "value": round(self.value, 4),
            "baseline": round(self.baseline, 4),
            "threshold": self.threshold,
            "text": self.text,
        }


def _shares(counter: Counter[str]) -> dict[str, float]:
    total = sum(counter.values())
    return {k: v / total for k, v in sorted(counter.items())} if total else {}


def summarize(day: date, inspections: Iterable[Mapping[str, Any]]) -> DaySummary:
    grades: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    conf_sum: defaultdict[str, float] = defaultdict(float)
    conf_n: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    overridden: Counter[str] = Counter()
    n = 0
    for insp in inspections:
        n += 1
        grade = str(insp["grade"]["level"])
        grades[grade] += 1
        paths[str(insp["disposition"]["path"])] += 1
        for view in insp.get("views", []):
            for d in view.get("detections", []):
                conf_sum[d["class_name"]] += float(d["confidence"])
                conf_n[d["class_name"]] += 1
        decisions = insp.get("decisions", [])
        if decisions:
            decided[grade] += 1
            if decisions[-1].get("action") == "override":
                overridden[grade] += 1
    return DaySummary(
        day=day,
        inspections=n,
        grade_share=_shares(grades),
        disposition_share=_shares(paths),
        mean_confidence={k: conf_sum[k] / conf_n[k] for k in sorted(conf_n)},
        detections=dict(sorted(conf_n.items())),
        override_rate={k: overridden[k] / decided[k] for k in sorted(decided)},
        decided=dict(sorted(decided.items())),
    )


def daily(inspections: Iterable[Mapping[str, Any]]) -> list[DaySummary]:
    """One summary per day that has inspections, oldest first."""
    by_day: defaultdict[date, list[Mapping[str, Any]]] = defaultdict(list)
    for insp in inspections:
        by_day[day_of(insp)].append(insp)
    return [summarize(d, by_day[d]) for d in sorted(by_day)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def find_warnings(today: DaySummary, baseline: list[DaySummary], cfg: DriftConfig) -> list[DriftWarning]:
    """What moved beyond its threshold between the baseline days (weighted alike) and ``today``."""
    if today.inspections < cfg.min_inspections:
        return []
    base = [b for b in baseline if b.inspections >= cfg.min_inspections and b.day < today.day]
    if not base:
        return []
    out: list[DriftWarning] = []
    for metric, limit in (("grade_share", cfg.max_share_change), ("disposition_share", cfg.max_share_change)):
        keys = sorted(set(getattr(today, metric)) | {k for b in base for k in getattr(b, metric)})
        for k in keys:
            now = getattr(today, metric).get(k, 0.0)
            before = _mean([getattr(b, metric).get(k, 0.0) for b in base])
            if abs(now - before) > limit:
                out.append(DriftWarning(metric, k, now, before, limit))
    for k, now in today.mean_confidence.items():
        seen = [b.mean_confidence[k] for b in base if k in b.mean_confidence]
        if seen and _mean(seen) - now > cfg.max_confidence_drop:
            out.append(DriftWarning("mean_confidence", k, now, _mean(seen), cfg.max_confidence_drop))
    for k, now in today.override_rate.items():
        seen = [b.override_rate[k] for b in base if k in b.override_rate]
        if seen and abs(now - _mean(seen)) > cfg.max_override_rate_change:
            out.append(DriftWarning("override_rate", k, now, _mean(seen), cfg.max_override_rate_change))
    return out


def report(summaries: list[DaySummary], cfg: DriftConfig, day: date | None = None) -> dict[str, Any]:
    """The watched day (default: the newest with inspections), its baseline window and the warnings."""
    if not summaries:
        return {"day": None, "summary": None, "baseline_days": [], "warnings": []}
    today = next((s for s in summaries if s.day == day), None) if day is not None else summaries[-1]
    if today is None:
        return {"day": day.isoformat() if day else None, "summary": None, "baseline_days": [], "warnings": []}
    start = today.day - timedelta(days=cfg.baseline_days)
    base = [s for s in summaries if start <= s.day < today.day]
    return {
        "day": today.day.isoformat(),
        "summary": today.as_dict(),
        "baseline_days": [b.day.isoformat() for b in base],
        "warnings": [w.as_dict() for w in find_warnings(today, base, cfg)],
    }
