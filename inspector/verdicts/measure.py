"""Deserved against got, item by item: the rates an operator judges the station by (pure).

A :class:`Verdict` pairs the grade and disposition an item deserves (graded from its true boxes)
with those the serving pipeline gave it. :func:`summarise` turns a list of them into the grade
confusion matrix, the miss and alarm rates, the review share, the disposition agreement, the money
left on the table and the calibration of the grade probabilities, overall and per family.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inspector.types import CONDITION_GRADES, DispositionPath, GradeLevel

A, B, C, D = CONDITION_GRADES
LEVELS: tuple[GradeLevel, ...] = tuple(GradeLevel)
N_BINS = 10

DEFINITIONS: dict[str, str] = {
    "items": "renders whose deserved grade (graded from the true boxes) is a condition grade A..D; "
    "empty benches and pictures the quality gate refuses are counted apart",
    "grade_exact": "items whose served grade equals the deserved grade / items",
    "costly_miss": "items deserving C or D served A or B / items deserving C or D",
    "optimistic_miss": "items deserving B served A / items deserving B",
    "false_alarm": "items deserving A served C or D / items deserving A",
    "manual_review": "items the served disposition sends to MANUAL_REVIEW / items",
    "disposition_agreement": "items whose served path equals the path recommended for the deserved grade / items",
    "money_left": "sum over items of max(0, value of the deserved grade's best path - value, under the deserved "
    "grade, of the served path); a served MANUAL_REVIEW is worth the best path less the review's cost",
    "value_at_stake": "sum over items of the value of the deserved grade's best path",
    "money_left_share": "money_left / value_at_stake",
    "calibration_error": f"expected calibration error ({N_BINS} equal bins) of the probability the served grade "
    "gives its own level against being the deserved grade, over items served a condition grade",
    "brier": "mean over those items of sum over A..D of (served probability - 1 if deserved else 0)^2",
    "deserved_share": "share of all renders deserving each grade (the yardstick's own distribution)",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One item: what it deserves, what it got, and what the difference is worth."""

    key: str
    family: str | None
    deserved: GradeLevel
    got: GradeLevel
    deserved_path: DispositionPath
    got_path: DispositionPath
    confidence: float  # the probability the served grade gives its own level
    probabilities: Mapping[GradeLevel, float]  # the served grade's probabilities
    best_value: float | None = None  # value of the deserved grade's best path (None: not valued)
    got_value: float | None = None  # value under the deserved grade of the served path

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "family": self.family,
            "deserved": self.deserved.value,
            "got": self.got.value,
            "deserved_path": self.deserved_path.value,
            "got_path": self.got_path.value,
            "confidence": round(self.confidence, 4),
            "probabilities": {k.value: round(v, 4) for k, v in self.probabilities.items()},
            "best_value": None if self.best_value is None else round(self.best_value, 2),
            "got_value": None if self.got_value is None else round(self.got_value, 2),
        }


def _share(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def calibration(pairs: Iterable[tuple[float, bool]], bins: int = N_BINS) -> dict[str, Any]:
    """Expected calibration error of (confidence, right) pairs and the reliability table behind it."""
    table: list[list[float]] = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum of confidence, right
    for conf, right in pairs:
        b = min(bins - 1, max(0, int(conf * bins)))
        table[b][0] += 1
        table[b][1] += conf
        table[b][2] += float(right)
    n = sum(row[0] for row in table)
    ece = sum(row[0] / n * abs(row[2] / row[0] - row[1] / row[0]) for row in table if row[0]) if n else None
    return {
        "ece": None if ece is None else round(ece, 4),
        "bins": [
            {
                "low": round(i / bins, 3),
                "high": round((i + 1) / bins, 3),
                "count": int(row[0]),
                "confidence": round(row[1] / row[0], 4) if row[0] else None,
                "accuracy": round(row[2] / row[0], 4) if row[0] else None,
            }
            for i, row in enumerate(table)
        ],
    }


def _rates(vs: Sequence[Verdict]) -> dict[str, Any]:
    items = [v for v in vs if v.deserved.is_condition]
    n = len(items)
    by = Counter(v.deserved for v in items)
    cd = by[C] + by[D]
    valued = [(v.best_value, v.got_value) for v in items if v.best_value is not None and v.got_value is not None]
    left = sum(max(0.0, best - got) for best, got in valued)
    stake = sum(best for best, _ in valued)
    served = [v for v in items if v.got.is_condition]
    cal = calibration((v.confidence, v.got is v.deserved) for v in served)
    brier = (
        sum(sum((v.probabilities.get(g, 0.0) - (g is v.deserved)) ** 2 for g in CONDITION_GRADES) for v in served)
        / len(served)
        if served
        else None
    )
    return {
        "items": n,
        "grade_exact": _share(sum(v.got is v.deserved for v in items), n),
        "costly_miss": _share(sum(v.deserved in (C, D) and v.got in (A, B) for v in items), cd),
        "optimistic_miss": _share(sum(v.deserved is B and v.got is A for v in items), by[B]),
        "false_alarm": _share(sum(v.deserved is A and v.got in (C, D) for v in items), by[A]),
        "manual_review": _share(sum(v.got_path is DispositionPath.MANUAL_REVIEW for v in items), n),
        "disposition_agreement": _share(sum(v.got_path is v.deserved_path for v in items), n),
        "money_left": round(left, 2),
        "value_at_stake": round(stake, 2),
        "money_left_share": round(left / stake, 4) if stake > 0 else None,
        "calibration_error": cal["ece"],
        "brier": None if brier is None else round(brier, 4),
        "deserved": {g.value: by[g] for g in CONDITION_GRADES},
    }


def confusion(vs: Sequence[Verdict]) -> dict[str, Any]:
    """Rows deserved, columns got, over A..D and every other level that occurs."""
    seen = {v.deserved for v in vs} | {v.got for v in vs}
    levels = [g for g in LEVELS if g.is_condition or g in seen]
    counts = Counter((v.deserved, v.got) for v in vs)
    return {
        "levels": [g.value for g in levels],
        "matrix": [[counts[(r, c)] for c in levels] for r in levels],
    }


def summarise(vs: Sequence[Verdict], currency: str = "EUR") -> dict[str, Any]:
    """Every figure of the evaluation, overall and per family, with the definitions of the rates."""
    total = len(vs)
    deserved_all = Counter(v.deserved for v in vs)
    empty = [v for v in vs if v.deserved is GradeLevel.EMPTY]
    families = sorted({v.family for v in vs if v.family})
    items = [v for v in vs if v.deserved.is_condition]
    return {
        "renders": total,
        **_rates(vs),
        "currency": currency,
        "confusion": confusion(vs),
        "calibration": calibration((v.confidence, v.got is v.deserved) for v in items if v.got.is_condition),
        "deserved_share": {g.value: _share(deserved_all[g], total) for g in LEVELS if deserved_all[g]},
        "empty_benches": {
            "renders": len(empty),
            "served_empty": sum(v.got is GradeLevel.EMPTY for v in empty),
        },
        "per_family": {f: _rates([v for v in vs if v.family == f]) for f in families},
        "definitions": DEFINITIONS,
    }


HEADLINE = (
    "grade_exact",
    "costly_miss",
    "optimistic_miss",
    "false_alarm",
    "manual_review",
    "disposition_agreement",
    "money_left_share",
    "calibration_error",
)


def headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The few figures kept in a history entry and shown first."""
    return {k: summary.get(k) for k in ("items", *HEADLINE, "money_left", "value_at_stake")}


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def summary_text(summary: Mapping[str, Any], title: str = "") -> str:
    """The summary as a terminal report: confusion matrix, rates, per family."""
    conf = summary["confusion"]
    levels: list[str] = conf["levels"]
    width = max(6, *(len(x) for x in levels)) + 1
    lines = [title] if title else []
    lines += [
        "grade confusion (rows: deserved, columns: served)",
        " " * width + "".join(f"{x:>{width}}" for x in levels),
    ]
    for name, row in zip(levels, conf["matrix"], strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{c:>{width}}" for c in row))
    cur = summary.get("currency", "")
    lines += [
        "",
        f"items {summary['items']} (of {summary['renders']} renders; empty benches "
        f"{summary['empty_benches']['renders']}, served EMPTY {summary['empty_benches']['served_empty']})",
        f"grade exact            {_pct(summary['grade_exact'])}",
        f"costly misses (C/D->A/B) {_pct(summary['costly_miss'])} of items deserving C or D",
        f"optimistic (B->A)      {_pct(summary['optimistic_miss'])} of B items",
        f"false alarms (A->C/D)  {_pct(summary['false_alarm'])} of A items",
        f"manual review          {_pct(summary['manual_review'])} of items",
        f"disposition agreement  {_pct(summary['disposition_agreement'])}",
        f"money left on table    {summary['money_left']:,.2f} {cur} of {summary['value_at_stake']:,.2f} at stake "
        f"({_pct(summary['money_left_share'])})",
        f"calibration error      {summary['calibration_error']} (Brier {summary['brier']})",
        "deserved share         " + ", ".join(f"{k} {_pct(v)}" for k, v in summary["deserved_share"].items()),
        "",
        "per family: items, exact, costly, B->A, false alarm, review, money left",
    ]
    for fam, r in summary["per_family"].items():
        lines.append(
            f"  {fam:<10} {r['items']:>5} {_pct(r['grade_exact']):>7} {_pct(r['costly_miss']):>7} "
            f"{_pct(r['optimistic_miss']):>7} {_pct(r['false_alarm']):>7} {_pct(r['manual_review']):>7} "
            f"{_pct(r['money_left_share']):>7}"
        )
    return "\n".join(lines)
