"""The pure parts of the learning loop: candidates, sampling, drift, replay differences, --since."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from inspector.cli.feedback import parse_since
from inspector.config import DriftConfig, SamplingConfig
from inspector.feedback import drift
from inspector.feedback.candidates import label_candidates, merge
from inspector.feedback.export import pre_annotations
from inspector.feedback.replay import Outcome, diff
from inspector.feedback.sampling import sample
from tests.feedback.builders import accept, det, insp, override


def test_overrides_and_flags_become_label_candidates() -> None:
    records = [
        insp("a", views=[[det("item", 0.9)], [det("item", 0.8)]], decisions=[accept(), override()]),
        insp("b", flags=[{"kind": "missed_defect", "view": 0}]),
        insp("c", decisions=[accept()]),
        insp("d", views=[[det("item", 0.9)], [det("scratch", 0.4)]], flags=[{"kind": "false_defect", "view": 1}]),
    ]
    got = {(c.inspection_id, c.view): c.reasons for c in label_candidates(records)}
    assert got == {
        ("a", 0): ("override",),
        ("a", 1): ("override",),
        ("b", 0): ("missed_defect",),
        ("d", 1): ("false_defect",),
    }


def test_pre_annotations_drop_false_defects_and_add_drawn_missed_ones() -> None:
    view = insp("a", views=[[det("item", 0.9), det("scratch", 0.3), det("dent", 0.5)]])["views"][0]
    flags = [
        {"kind": "false_defect", "view": 0, "detection": 1},
        {"kind": "missed_defect", "view": 0, "box": [1, 2, 30, 40], "class_name": "crack"},
        {"kind": "missed_defect", "view": 0, "box": None, "class_name": "stain"},  # no box: nothing to draw
        {"kind": "false_defect", "view": 1, "detection": 2},  # another view
    ]
    boxes = pre_annotations(view, flags)
    assert [(b["class_name"], b["from"]) for b in boxes] == [
        ("item", "model"),
        ("dent", "model"),
        ("crack", "operator"),
    ]
    assert boxes[-1]["xyxy"] == [1, 2, 30, 40]


def test_sampling_priorities_and_daily_limits() -> None:
    cfg = SamplingConfig(
        near_threshold_band=0.05,
        near_threshold_per_day=2,
        disagreement_per_day=10,
        rare_class_share=0.2,
        rare_class_per_day=10,
        random_per_day=3,
        daily_limit=100,
        seed=1,
    )
    records = [insp(f"s{i}", views=[[det("item", 0.9), det("scratch", 0.9)]]) for i in range(20)]  # common, far
    records += [insp(f"n{i}", views=[[det("scratch", 0.26 + i * 0.01)]]) for i in range(4)]  # near 0.25
    records += [insp("r", views=[[det("crack", 0.9)]])]  # rare
    records += [insp("o", views=[[det("scratch", 0.9)]], decisions=[override()])]
    records += [insp("x", day="2026-12-02", views=[[det("scratch", 0.9)]])]
    picked = sample(records, cfg, threshold=0.25)
    by = {c.inspection_id: c.reasons for c in picked}
    assert by["o"] == ("override",)
    assert by["r"] == ("rare_class",)
    near = [i for i, r in by.items() if r == ("near_threshold",)]
    assert sorted(near) == ["n0", "n1"]  # the two closest, the daily limit
    first_day_random = [c for c in picked if c.reasons == ("random",) and c.day == date(2026, 12, 1)]
    assert len(first_day_random) == 3  # a capped random sample of the unremarkable ones
    assert by["x"] == ("random",)  # another day, its own limits
    assert picked == sample(records, cfg, threshold=0.25), "same seed, same sample"
    tight = sample(records, cfg.model_copy(update={"daily_limit": 2}), threshold=0.25)
    assert [c.inspection_id for c in tight if c.day == date(2026, 12, 1)] == ["o", "r"]


def test_merge_keeps_one_candidate_per_view_with_every_reason() -> None:
    records = [insp("a", decisions=[override()], views=[[det("scratch", 0.27)]])]
    merged = merge(label_candidates(records), sample(records, SamplingConfig(), threshold=0.25))
    assert len(merged) == 1 and merged[0].reasons == ("override",)


def _day(day: str, n: int, grade: str, overridden: int = 0, conf: float = 0.8) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        decisions = [override()] if i < overridden else [accept()]
        out.append(insp(f"{day}-{i}", day=day, grade=grade, views=[[det("scratch", conf)]], decisions=decisions))
    return out


def test_drift_warns_when_a_figure_moves_beyond_its_threshold() -> None:
    cfg = DriftConfig(min_inspections=5, max_share_change=0.3, max_confidence_drop=0.1, max_override_rate_change=0.3)
    records = _day("2026-11-29", 10, "B") + _day("2026-11-30", 10, "B", overridden=1)
    steady = drift.report(drift.daily([*records, *_day("2026-12-01", 10, "B", overridden=1)]), cfg)
    assert steady["day"] == "2026-12-01" and steady["baseline_days"] == ["2026-11-29", "2026-11-30"]
    assert steady["warnings"] == []
    moved = drift.report(drift.daily([*records, *_day("2026-12-01", 10, "D", overridden=8, conf=0.5)]), cfg)
    found = {(w["metric"], w["key"]) for w in moved["warnings"]}
    assert found == {
        ("grade_share", "B"),
        ("grade_share", "D"),
        ("mean_confidence", "scratch"),
    }  # override rate of D has no baseline: no warning about it
    summary = moved["summary"]
    assert summary["grade_share"] == {"D": 1.0} and summary["override_rate"] == {"D": 0.8}
    assert summary["mean_confidence"]["scratch"] == pytest.approx(0.5)
    few = drift.report(drift.daily([*records, *_day("2026-12-01", 3, "D")]), cfg)
    assert few["warnings"] == [], "a day with too few inspections raises nothing"


def test_drift_override_rate_warning() -> None:
    cfg = DriftConfig(min_inspections=5, max_override_rate_change=0.3)
    records = _day("2026-11-30", 10, "B", overridden=1) + _day("2026-12-01", 10, "B", overridden=6)
    warnings = drift.report(drift.daily(records), cfg)["warnings"]
    assert [(w["metric"], w["key"], w["value"], w["baseline"]) for w in warnings] == [("override_rate", "B", 0.6, 0.1)]
    assert "override rate of grade B is 0.60 against 0.10" in warnings[0]["text"]


def test_replay_diff_counts_changes_and_value() -> None:
    outcomes = [
        Outcome("a", "B", "B", "OPEN_BOX", "OPEN_BOX", 50.0, 50.0, final_grade="B"),
        Outcome("b", "B", "C", "OPEN_BOX", "REFURBISH", 50.0, 30.0, final_grade="C"),
        Outcome("c", "A", "B", "RESTOCK", "RESTOCK", 90.0, 80.5),
    ]
    rep = diff(outcomes)
    assert rep["grades_changed"] == 2 and rep["dispositions_changed"] == 1
    assert rep["grade_changes"] == {"B->C": 1, "A->B": 1}
    assert rep["disposition_changes"] == {"OPEN_BOX->REFURBISH": 1}
    assert rep["expected_value"] == {"before": 190.0, "after": 160.5, "difference": -29.5, "per_inspection": -9.83}
    assert rep["operator_agreement"] == {"decided": 2, "grade_before": 0.5, "grade_after": 1.0}


def test_since_takes_ages_dates_and_times() -> None:
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_since("12h", now) == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00:00+01:00", now) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since"):
        parse_since("last week", now)
