"""``inspector evaluate --items``: the item-level evaluation from the command line's options to its outputs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspector.pipeline import PipelineError
from inspector.verdicts.items import HELD_OUT_BASE, dataset_items, held_out_items
from inspector.verdicts.measure import summary_text
from inspector.verdicts.run import evaluate_items, plot_reliability, report, settings_from, write_history, write_to_card


def run_items(
    *,
    seeds: Sequence[int] | None,
    data: Path | None = None,
    split: str = "test",
    model: str | None = None,
    overrides: Sequence[str] = (),
    cache: Path | None = None,
    workers: int = 1,
    out: Path | None = None,
    plot: Path | None = None,
    records: Path | None = None,
    write_card: bool = False,
    models_dir: Path | None = None,
    as_json: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate, print the report (text or JSON) and write what was asked for; returns the result."""
    settings = settings_from(overrides)
    if model is not None:
        settings.detector.model = model
    if models_dir is not None:
        settings.registry.root = models_dir
    if data is not None:
        items = dataset_items(data, split)
        source: dict[str, Any] = {"dataset": str(data), "split": split}
    else:
        assert seeds is not None
        size = (settings.camera.width, settings.camera.height)  # as the station's camera sees them
        items = held_out_items(seeds, cache=cache, workers=workers, size=size)
        source = {
            "held_out": f"{seeds[0]}:{seeds[-1] + 1}" if seeds else "",
            "render_seed": f"{HELD_OUT_BASE} + item",
            "size": f"{size[0]}x{size[1]}",
        }

    def tick(n: int) -> None:
        if progress and n % 50 == 0:
            print(f"{n} items judged", file=sys.stderr, flush=True)

    try:
        verdicts, run = evaluate_items(items, settings, progress=tick)
    except PipelineError as exc:  # no model, bad rubric or policy: one line, as the CLI reports errors
        raise ValueError(f"cannot build the serving pipeline: {exc}") from exc
    from inspector.disposition import load_policy

    currency = load_policy(settings.disposition.policy_file).currency
    result = report(verdicts, run, source, currency)
    title = f"{result['model_version']} on {result['items']} items"
    if plot is not None:
        result["reliability_plot"] = str(plot)
        plot_reliability(result["calibration"], plot, title)
    if records is not None:
        records.parent.mkdir(parents=True, exist_ok=True)
        records.write_text("".join(json.dumps(v.to_dict()) + "\n" for v in verdicts), encoding="utf-8")
    if out is not None:
        result = write_history(out, result)
    if write_card:
        write_to_card(str(result["model_version"]), result, settings.registry.root)
    print(json.dumps(result, indent=1) if as_json else summary_text(result, title))
    return result
