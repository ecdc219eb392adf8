"""A version's figures, drawn again from the numbers its entry stores: training curves, PR curve, confusion matrix.

The pictures are not kept in the repository: ``inspector models plots VERSION`` draws them beside
the card from ``meta.json`` (the per-epoch log training stores, and each evaluation's PR curve and
confusion matrix). A figure whose numbers a version never stored is not drawn: versions trained
before those numbers were kept have no training curves or PR curve to show.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inspector import registry
from inspector.training.card import CONFUSION, PR_CURVE, TRAINING_CURVES, figures_of

PR_POINTS = 101  # recall steps a stored PR curve keeps (ultralytics draws 1000; the plot looks the same)
_SKIP_COLUMNS = ("epoch", "time")


def sampled_pr_curve(
    recall: npt.ArrayLike | None, precision: npt.ArrayLike | None, names: Sequence[str]
) -> dict[str, Any] | None:
    """Each class's precision at ``PR_POINTS`` evenly spaced recalls (IoU 0.5), small enough to store with the version.

    ``recall`` and ``precision`` are ultralytics' curve (``box.px``, ``box.prec_values``: one row per class
    in ``names``' order); None when there is none.
    """
    if recall is None or precision is None:
        return None
    x = np.asarray(recall, np.float64)
    p = np.asarray(precision, np.float64).reshape(-1, x.size) if x.size else np.zeros((0, 0))
    if x.size < 2 or len(p) != len(names):
        return None
    grid = np.linspace(0.0, 1.0, PR_POINTS)
    return {
        "recall": [round(float(v), 4) for v in grid],
        "precision": {
            name: [round(float(v), 4) for v in np.interp(grid, x, row)] for name, row in zip(names, p, strict=True)
        },
    }


def curves_from_rows(rows: Sequence[Mapping[str, float]]) -> dict[str, list[float | None]]:
    """Ultralytics' per-epoch ``results.csv`` rows, column by column and rounded, to store with the version."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out: dict[str, list[float | None]] = {}
    for col in columns:
        values = [row.get(col) for row in rows]
        out[col] = [None if v is None or not math.isfinite(v) else round(float(v), 6) for v in values]
    return out


def save_figure(fig: Any, path: Path) -> None:
    """Write the picture so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # not pyplot: no global state, no display needed

    return Figure(figsize=(width, height), layout="constrained")


def plot_training_curves(curves: Mapping[str, Sequence[float | None]], path: Path, title: str) -> None:
    """Every logged loss and validation metric against the epoch, one panel each."""
    epochs = [float(e) if e is not None else float(i + 1) for i, e in enumerate(curves.get("epoch") or [])]
    columns = [k for k in curves if k not in _SKIP_COLUMNS and not k.startswith("lr/")]
    if not epochs:
        epochs = [float(i + 1) for i in range(max((len(v) for v in curves.values()), default=0))]
    ncols = min(5, max(1, len(columns)))
    nrows = max(1, math.ceil(len(columns) / ncols))
    fig = new_figure(3.2 * ncols, 2.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, col in zip(axes, columns, strict=False):
        pts = [(e, v) for e, v in zip(epochs, curves[col], strict=False) if v is not None]
        if pts:
            ax.plot([e for e, _ in pts], [v for _, v in pts], marker="o", markersize=3)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_pr_curve(curve: Mapping[str, Any], ap50: Mapping[str, float | None], path: Path, title: str) -> None:
    """Precision against recall per class at IoU 0.5, and their mean (the mAP50 curve)."""
    recall = np.asarray(curve["recall"], np.float64)
    rows = {name: np.asarray(p, np.float64) for name, p in curve["precision"].items()}
    fig = new_figure(7.5, 5.5)
    ax = fig.subplots()
    for name, p in rows.items():
        ap = ap50.get(name)
        ax.plot(recall, p, linewidth=1, label=f"{name} {ap:.3f}" if ap is not None else name)
    if rows:
        mean = np.mean(list(rows.values()), axis=0)
        known = [v for v in ap50.values() if v is not None]
        label = f"all classes {np.mean(known):.3f} mAP50" if known else "all classes"
        ax.plot(recall, mean, linewidth=3, color="blue", label=label)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title(title)
    save_figure(fig, path)


def plot_confusion_matrix(cm: Mapping[str, Any], path: Path, title: str) -> None:
    """Counts at the operating confidence, rows predicted and columns true, as a heat map with the numbers."""
    labels = [str(x) for x in cm["labels"]]
    matrix = np.asarray(cm["matrix"], np.float64)
    n = len(labels)
    fig = new_figure(1.0 + 0.75 * n, 0.6 + 0.7 * n)
    ax = fig.subplots()
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    top = matrix.max() if matrix.size else 0.0
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                colour = "white" if matrix[i, j] > 0.6 * top else "black"
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title)
    save_figure(fig, path)


def write_plots(version: str, root: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Draw every figure the version's stored numbers allow, beside its card (or into ``out_dir``).

    The primary evaluation's figures take the names the card links; other evaluations' are prefixed
    with their key. Returns the files written.
    """
    meta = registry.load_meta(version, root)
    target = out_dir if out_dir is not None else registry.version_dir(version, root)
    written: list[Path] = []
    figures = figures_of(meta)
    if "training_curves" in figures:
        path = target / TRAINING_CURVES
        plot_training_curves(meta["training"]["curves"], path, f"{version}: training")
        written.append(path)
    primary = meta.get("primary_evaluation")
    for key, ev in (meta.get("evaluations") or {}).items():
        prefix = "" if key == primary else f"{key}-"
        found = figures_of({"evaluations": {key: ev}, "primary_evaluation": key})
        if "pr_curve" in found:
            path = target / f"{prefix}{PR_CURVE}"
            ap50 = {name: c.get("ap50") for name, c in (ev.get("per_class") or {}).items()}
            plot_pr_curve(ev["pr_curve"], ap50, path, f"{version} on {key}: precision-recall (IoU 0.5)")
            written.append(path)
        if "confusion_matrix" in found:
            path = target / f"{prefix}{CONFUSION}"
            conf = ev.get("operating_confidence")
            plot_confusion_matrix(ev["confusion_matrix"], path, f"{version} on {key} at confidence {conf}")
            written.append(path)
    return written
