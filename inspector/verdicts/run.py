"""Grade every bench item twice, from its true boxes and by the serving pipeline, and keep the figures.

The serving side is the pipeline ``inspector serve`` builds from the settings (the active model
unless one is named). The deserved side runs the same :class:`~inspector.pipeline.Pipeline` class
with the same rubric, policy, catalogue, family check and learned graders, but its detector
returns the item's true boxes at confidence 1.0 and it carries none of the served model's
measured traits: it is the rubric's grade of what is truly there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.config import Settings
from inspector.disposition import Catalogue
from inspector.disposition.policy import VALUE_PATHS
from inspector.items import ItemInfo, Sku
from inspector.labelmap import default_labelmap
from inspector.pipeline import Pipeline, build_pipeline, served_detector_config
from inspector.registry import write_atomic
from inspector.types import Detections, Disposition, DispositionPath, Frame, Inspection
from inspector.verdicts.items import BenchItem
from inspector.verdicts.measure import Verdict, headline, summarise

HISTORY_KEEP = 200


@dataclass(frozen=True)
class _Truth:
    """A detector that returns the boxes it is given: the deserved side of the comparison."""

    boxes: Detections
    class_names: tuple[str, ...]
    model_version: str = "truth"

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self.boxes for _ in frames]


def settings_from(overrides: Iterable[str]) -> Settings:
    """Settings as ``inspector serve`` reads them (environment included), with ``section.key=value`` overrides."""
    import yaml

    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"a setting is given as section.key=value, got {item!r}")
        node = tree
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    return Settings(**tree)


def truth_detections(item: BenchItem, class_names: Sequence[str]) -> Detections:
    """The item's labelled boxes in the served model's class order, at confidence 1.0."""
    ours = default_labelmap().names
    index = {n: i for i, n in enumerate(class_names)}
    keep = [k for k, c in enumerate(item.class_ids) if ours[int(c)] in index]
    return Detections(
        xyxy=item.xyxy[keep],
        confidence=np.ones(len(keep), np.float32),
        class_id=np.asarray([index[ours[int(item.class_ids[k])]] for k in keep], np.int64),
        class_names=tuple(class_names),
    )


def item_of(meta: Mapping[str, Any]) -> tuple[ItemInfo, Sku | None]:
    """What the WMS would tell about the item, and its catalogue entry, from the render's sidecar."""
    raw = meta.get("sku")
    if not raw:
        return ItemInfo(), None
    sku = Sku(**raw)
    return ItemInfo(sku=sku.sku, category=sku.category, price=sku.price_new), sku


def _values(truth: Disposition, review_cost: float) -> tuple[float, dict[DispositionPath, float]]:
    """The deserved grade's best value, and each path's value under the deserved grade."""
    by_path = {a.path: a.expected_value for a in truth.alternatives}
    if truth.path is DispositionPath.MANUAL_REVIEW:
        allowed = [a.expected_value for a in truth.alternatives if a.allowed and a.path in VALUE_PATHS]
        best = max(allowed) if allowed else truth.expected_value
    else:
        best = truth.expected_value
    by_path[DispositionPath.MANUAL_REVIEW] = best - review_cost  # a person finds the true grade, at a cost
    return best, by_path


def judge(item: BenchItem, served: Pipeline) -> tuple[Verdict, Inspection]:
    """Both grades of one item and what the difference is worth."""
    info, sku = item_of(item.meta)
    catalogue = served.catalogue
    if sku is not None and sku.sku not in catalogue:
        catalogue = Catalogue(skus={**catalogue.skus, sku.sku: sku}, source=catalogue.source)
    truth_pipe = Pipeline(
        _Truth(truth_detections(item, served.detector.class_names), tuple(served.detector.class_names)),
        rubric=served.rubric,
        policy=served.policy,
        catalogue=catalogue,
        quality=served.quality,
        family=served.family,
        learned=served.learned,
    )
    frames = [Frame(image=item.image)]
    truth = truth_pipe.inspect(frames, info, inspection_id=f"{item.key}-truth")
    original = served.catalogue
    served.catalogue = catalogue
    try:
        got = served.inspect(frames, info, inspection_id=item.key)
    finally:
        served.catalogue = original
    valued = truth.grade.level.is_condition and sku is not None
    best, by_path = _values(truth.disposition, served.policy.review.cost)
    got_value = by_path.get(got.disposition.path)
    if got_value is None:  # a hold the deserved side did not weigh
        got_value = -served.policy.hold_cost(got.disposition.path)
    verdict = Verdict(
        key=item.key,
        family=item.meta.get("family"),
        deserved=truth.grade.level,
        got=got.grade.level,
        deserved_path=truth.disposition.path,
        got_path=got.disposition.path,
        confidence=got.grade.confidence,
        probabilities=dict(got.grade.probabilities),
        best_value=best if valued else None,
        got_value=got_value if valued else None,
    )
    return verdict, got


def evaluate_items(
    items: Iterable[BenchItem],
    settings: Settings,
    *,
    pipeline: Pipeline | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Verdict], dict[str, Any]]:
    """Judge every item; the verdicts and a record of what was served (model, settings, timings)."""
    served = pipeline if pipeline is not None else build_pipeline(settings)
    verdicts: list[Verdict] = []
    t0 = time.perf_counter()
    detect_ms: list[float] = []
    for n, item in enumerate(items, start=1):
        verdict, got = judge(item, served)
        verdicts.append(verdict)
        detect_ms.append(float(got.timings_ms.get("detect", 0.0)))
        if progress is not None:
            progress(n)
    seconds = time.perf_counter() - t0
    run = {
        "model_version": served.model_version,
        "rubric_version": served.rubric_version,
        "policy_version": served.policy_version,
        "detector": _served_config(settings, served.model_version),
        "grading": settings.grading.model_dump(mode="json"),
        # the anomaly model changes verdicts too: say which one judged (None: the detector alone)
        "anomaly": served.anomaly.version if served.anomaly is not None else None,
        "seconds": round(seconds, 1),
        "detect_ms_median": round(float(np.median(detect_ms)), 1) if detect_ms else None,
    }
    return verdicts, run


def _served_config(settings: Settings, version: str) -> dict[str, Any]:
    """The detector settings as served: the version's size and confidence unless the settings name them."""
    from inspector.registry import RegistryError

    try:
        served = served_detector_config(settings, version)
    except RegistryError:  # weights given by path: no registry record
        served = settings.detector
    return served.model_dump(mode="json", exclude={"model"})


def report(
    verdicts: Sequence[Verdict], run: Mapping[str, Any], source: Mapping[str, Any], currency: str
) -> dict[str, Any]:
    """The JSON answer: what was measured on what, and every figure."""
    from inspector.registry import now_iso

    return {"evaluated_at": now_iso(), "source": dict(source), **run, **summarise(verdicts, currency)}


def write_history(path: Path, result: Mapping[str, Any]) -> dict[str, Any]:
    """``path`` holds the latest result and a history of every run's headline figures."""
    history: list[Any] = []
    if path.is_file():
        try:
            history = list(json.loads(path.read_text(encoding="utf-8")).get("history") or [])
        except (ValueError, AttributeError):
            history = []
    entry = {
        "date": result.get("evaluated_at"),
        "model_version": result.get("model_version"),
        "source": result.get("source"),
        "detector": {
            k: (result.get("detector") or {}).get(k)
            for k in ("backend", "confidence", "imgsz", "tiling", "class_thresholds")
        },
        "blind_spots": (result.get("grading") or {}).get("blind_spots"),
        "anomaly": result.get("anomaly"),
        **headline(result),
        "seconds": result.get("seconds"),
    }
    out = {**result, "history": [*history, entry][-HISTORY_KEEP:]}
    write_atomic(path, json.dumps(out, indent=1) + "\n")
    return out


def plot_reliability(calibration: Mapping[str, Any], path: Path, title: str) -> Path:
    """Accuracy against the served grade's probability, per bin, with the items each bin holds."""
    from inspector.training.plots import new_figure, save_figure

    bins = [b for b in calibration["bins"] if b["count"]]
    fig = new_figure(5.0, 5.2)
    ax, hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label="served grades")
    ax.set_ylabel("share graded as deserved")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}\ncalibration error {calibration['ece']}")
    ax.legend(loc="upper left")
    hist.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["count"] for b in bins], width=0.09)
    hist.set_xlabel("probability of the served grade")
    hist.set_ylabel("items")
    save_figure(fig, path)
    return path


def write_to_card(version: str, result: Mapping[str, Any], root: Path | None = None) -> None:
    """Store the figures in the version's meta.json and render its card again."""
    from inspector import registry
    from inspector.training.card import render_card

    keep = {k: v for k, v in result.items() if k not in ("history", "calibration")}
    meta = registry.load_meta(version, root)  # re-read: another command may have changed it meanwhile
    meta["item_verdicts"] = keep
    registry.save_meta(version, meta, root)
    registry.save_card(version, render_card(meta), root)
