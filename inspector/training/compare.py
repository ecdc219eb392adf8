"""Champion against challenger: per-class AP deltas with paired bootstrap intervals over images.

Both models are scored image by image by ultralytics' validator; each resample draws the
same images (with replacement) for both, and AP is recomputed on the pooled rows of the
draw by :func:`inspector.metrics.ap_per_class` (ultralytics' ``ap_per_class`` figures).
The promotion guard reads the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from inspector.metrics import ap_per_class

Array = npt.NDArray[Any]


class Matches(Protocol):
    """What one image contributes: predictions with IoU-threshold hits, and the true classes."""

    @property
    def name(self) -> str: ...
    @property
    def tp(self) -> Array: ...
    @property
    def conf(self) -> Array: ...
    @property
    def pred_cls(self) -> Array: ...
    @property
    def target_cls(self) -> Array: ...


@dataclass(frozen=True, slots=True)
class Pooled:
    """Every image's rows concatenated once, with offsets, so a resample is a cheap gather."""

    tp: Array
    conf: Array
    pred_cls: Array
    target_cls: Array
    pred_of: list[Array]  # row indices of each image's predictions
    target_of: list[Array]

    @classmethod
    def of(cls, images: Sequence[Matches]) -> Pooled:
        pred_of: list[Array] = []
        target_of: list[Array] = []
        p = t = 0
        for im in images:
            pred_of.append(np.arange(p, p + len(im.conf)))
            target_of.append(np.arange(t, t + len(im.target_cls)))
            p += len(im.conf)
            t += len(im.target_cls)
        return cls(
            tp=np.concatenate([im.tp.reshape(-1, 10) for im in images]) if images else np.zeros((0, 10), bool),
            conf=np.concatenate([im.conf for im in images]) if images else np.zeros(0),
            pred_cls=np.concatenate([im.pred_cls for im in images]) if images else np.zeros(0),
            target_cls=np.concatenate([im.target_cls for im in images]) if images else np.zeros(0),
            pred_of=pred_of,
            target_of=target_of,
        )

    def draw(self, idx: Array) -> tuple[Array, Array, Array, Array]:
        pi = np.concatenate([self.pred_of[i] for i in idx]) if len(idx) else np.zeros(0, np.int64)
        ti = np.concatenate([self.target_of[i] for i in idx]) if len(idx) else np.zeros(0, np.int64)
        pi, ti = pi.astype(np.int64), ti.astype(np.int64)
        return self.tp[pi], self.conf[pi], self.pred_cls[pi], self.target_cls[ti]


def ap_by_class(pooled: Pooled, idx: Array, n_classes: int) -> Array:
    """AP per class id at IoU 0.50:0.95 on the images ``idx``, shape (n_classes, 10); NaN rows: no labels."""
    out = np.full((n_classes, 10), np.nan)
    tp, conf, pred_cls, target_cls = pooled.draw(idx)
    if len(target_cls) == 0:
        return out
    ap, classes = ap_per_class(tp, conf, pred_cls, target_cls)
    for row, c in zip(ap, classes, strict=True):
        if 0 <= int(c) < n_classes:
            out[int(c)] = row
    return out


def _interval(values: Array, level: float) -> list[float | None]:
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return [None, None]
    lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def _mean_present(ap: Array) -> float:
    present = ap[~np.isnan(ap)]
    return float(present.mean()) if len(present) else float("nan")


def _summary(a: Array, b: Array, boot_a: Array, boot_b: Array, present: Array, level: float) -> dict[str, Any]:
    """Mean over the classes present of both models, the delta and its interval over the resamples."""
    with np.errstate(invalid="ignore"):
        m_a = np.array([_mean_present(np.where(present, row, np.nan)) for row in boot_a])
        m_b = np.array([_mean_present(np.where(present, row, np.nan)) for row in boot_b])
    champion, challenger = _mean_present(a[present]), _mean_present(b[present])
    return {
        "champion": champion,
        "challenger": challenger,
        "delta": challenger - champion,
        "delta_ci": _interval(m_b - m_a, level),
    }


def bootstrap_compare(
    champion: Sequence[Matches],
    challenger: Sequence[Matches],
    names: Sequence[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """AP50 and AP50-95 of both models, deltas (challenger - champion) with paired bootstrap intervals.

    Overall (mAP over the classes with labels) and per class; each resample draws the same
    images for both models, so the interval is that of the difference, not of each model.
    """
    if [m.name for m in champion] != [m.name for m in challenger]:
        raise ValueError("the two models were not scored on the same images in the same order")
    if not champion:
        raise ValueError("no images to compare on")
    n, k = len(champion), len(names)
    pa, pb = Pooled.of(champion), Pooled.of(challenger)
    everything = np.arange(n)
    full_a, full_b = ap_by_class(pa, everything, k), ap_by_class(pb, everything, k)
    rng = np.random.default_rng(seed)
    boot_a = np.full((resamples, k, 10), np.nan)
    boot_b = np.full((resamples, k, 10), np.nan)
    for r in range(resamples):
        idx = rng.integers(0, n, n)
        boot_a[r] = ap_by_class(pa, idx, k)
        boot_b[r] = ap_by_class(pb, idx, k)
    ap_a, ap_b = full_a[:, 0], full_b[:, 0]
    with np.errstate(invalid="ignore"):
        ap95_a, ap95_b = full_a.mean(axis=1), full_b.mean(axis=1)
        b95_a, b95_b = boot_a.mean(axis=2), boot_b.mean(axis=2)
    present = ~np.isnan(ap_a)
    per_class: dict[str, dict[str, Any]] = {}
    for c in np.flatnonzero(present):
        per_class[str(names[c])] = {
            "instances": int(sum(int((m.target_cls == c).sum()) for m in champion)),
            "champion_ap50": float(ap_a[c]),
            "challenger_ap50": float(ap_b[c]),
            "delta": float(ap_b[c] - ap_a[c]),
            "delta_ci": _interval(boot_b[:, c, 0] - boot_a[:, c, 0], level),
            "champion_ap50_95": float(ap95_a[c]),
            "challenger_ap50_95": float(ap95_b[c]),
            "delta_ap50_95": float(ap95_b[c] - ap95_a[c]),
            "delta_ap50_95_ci": _interval(b95_b[:, c] - b95_a[:, c], level),
        }
    return {
        "images": n,
        "resamples": resamples,
        "seed": seed,
        "level": level,
        "map50": _summary(ap_a, ap_b, boot_a[:, :, 0], boot_b[:, :, 0], present, level),
        "map50_95": _summary(ap95_a, ap95_b, b95_a, b95_b, present, level),
        "per_class": per_class,
    }


def regressions(comparison: dict[str, Any], tolerance: float) -> list[str]:
    """The classes on which the challenger's AP50 is lower than the champion's by more than ``tolerance``."""
    out = []
    for name, row in comparison.get("per_class", {}).items():
        if float(row["delta"]) < -tolerance:
            out.append(f"{name}: AP50 {row['champion_ap50']:.3f} -> {row['challenger_ap50']:.3f} ({row['delta']:+.3f})")
    return out


def comparison_text(champion: str, challenger: str, comparison: dict[str, Any]) -> str:
    """A Markdown table of the comparison, as ``inspector models compare`` prints it."""

    def f(v: float | None) -> str:
        return "–" if v is None or np.isnan(v) else f"{v:.3f}"

    def ci(pair: list[float | None]) -> str:
        return f"[{f(pair[0])}, {f(pair[1])}]"

    m = comparison["map50"]
    lines = [
        f"## {challenger} against {champion}",
        "",
        f"{comparison['images']} images, {comparison['resamples']} paired bootstrap resamples over images "
        f"(seed {comparison['seed']}), {round(comparison['level'] * 100)}% intervals; "
        "AP50 by ultralytics' ap_per_class.",
        "",
        "| class | instances | champion AP50 | challenger AP50 | delta | interval |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| **all (mAP50)** | | {f(m['champion'])} | {f(m['challenger'])} | {f(m['delta'])} | {ci(m['delta_ci'])} |",
    ]
    if "map50_95" in comparison:
        m95 = comparison["map50_95"]
        lines.append(
            f"| **all (mAP50-95)** | | {f(m95['champion'])} | {f(m95['challenger'])} | {f(m95['delta'])} "
            f"| {ci(m95['delta_ci'])} |"
        )
    for name, row in comparison["per_class"].items():
        lines.append(
            f"| {name} | {row['instances']} | {f(row['champion_ap50'])} | {f(row['challenger_ap50'])} "
            f"| {f(row['delta'])} | {ci(row['delta_ci'])} |"
        )
    return "\n".join(lines) + "\n"
