"""Item-level evaluation of the serving pipeline: the grade each item deserves against the grade it gets.

The station is judged by its verdicts, not by box-level mAP: :mod:`.items` gives the bench items
(held-out renders or a rendered dataset), :mod:`.run` grades each twice with the served pipeline's
own rubric and policy, :mod:`.measure` turns the pairs into the rates an operator cares about.
"""

from __future__ import annotations

from inspector.verdicts.items import HELD_OUT_BASE, BenchItem, dataset_items, held_out_items, parse_seeds
from inspector.verdicts.measure import DEFINITIONS, Verdict, calibration, confusion, summarise, summary_text
from inspector.verdicts.run import evaluate_items, judge, settings_from, write_history, write_to_card

__all__ = [
    "DEFINITIONS",
    "HELD_OUT_BASE",
    "BenchItem",
    "Verdict",
    "calibration",
    "confusion",
    "dataset_items",
    "evaluate_items",
    "held_out_items",
    "judge",
    "parse_seeds",
    "settings_from",
    "summarise",
    "summary_text",
    "write_history",
    "write_to_card",
]
