"""Per-class operating points chosen by cost on validation data (``inspector models thresholds``).

The model runs once at a low confidence over the split. Greedy matching at IoU >= 0.3
(:func:`inspector.metrics.match`, most confident first) means the matches of the detections
above any threshold are those of the full run, so every candidate threshold is scored from one
pass: misses x cost_miss(class) + false alarms x cost_false(class). A false alarm counts only when
its centre lies on a labelled item: elsewhere the grader ignores it. The cheapest threshold of each
class, its recall there, and each class's base rate per family (share of items that carry one,
from the dataset's JSON sidecars) go into the version's ``meta.json`` and card; the station serves
them (:mod:`inspector.detect.operating`) and the grader weighs the misses they imply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspector import registry, runtime
from inspector.config import DetectorConfig, Tiling
from inspector.data.formats import fingerprint, read_data_yaml
from inspector.data.formats.yolo import label_path
from inspector.detect import load_detector
from inspector.detect.operating import META_KEY, parse_operating_points
from inspector.detect.tiling import TilingDetector
from inspector.grading.blindspots import ALL_FAMILIES
from inspector.imageio import read_image
from inspector.labelmap import DEFECT_CLASSES, ITEM
from inspector.metrics import Truth, match
from inspector.training.card import render_card
from inspector.training.evaluate import read_yolo_labels
from inspector.types import Detections, Frame
from inspector.yamlfile import read_mapping

DEFAULT_COSTS = Path(__file__).with_name("operating_costs.yaml")
MATCH_IOU = 0.3
GRID = tuple(round(0.01 * k, 2) for k in range(1, 96))


@dataclass(frozen=True, slots=True)
class Costs:
    """Cost of one miss and of one false alarm, per class."""

    miss: Mapping[str, float]
    false_alarm: Mapping[str, float]
    source: str = ""

    def of(self, name: str) -> tuple[float, float]:
        return float(self.miss.get(name, self.miss.get("default", 1.0))), float(
            self.false_alarm.get(name, self.false_alarm.get("default", 1.0))
        )


def load_costs(path: Path = DEFAULT_COSTS) -> Costs:
    raw = read_mapping(path)
    tables: list[dict[str, float]] = []
    for key in ("cost_miss", "cost_false"):
        table = raw.get(key)
        if not isinstance(table, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in table.values()
        ):
            raise ValueError(f"{path}: {key!r} must map class names (or 'default') to non-negative numbers")
        tables.append({str(k): float(v) for k, v in table.items()})
    return Costs(miss=tables[0], false_alarm=tables[1], source=str(path))


@dataclass
class ClassRun:
    """One class over the split: each detection's confidence, whether it matched a truth, whether it is on an item."""

    truths: int = 0
    confidence: list[float] = field(default_factory=list)
    hit: list[bool] = field(default_factory=list)
    on_item: list[bool] = field(default_factory=list)

    def counts(self, threshold: float) -> tuple[int, int]:
        """(matched detections, false alarms on an item) at or above ``threshold``."""
        conf, hit = np.asarray(self.confidence), np.asarray(self.hit, dtype=bool)
        kept = conf >= threshold
        return int((kept & hit).sum()), int((kept & ~hit & np.asarray(self.on_item, dtype=bool)).sum())


@dataclass
class SplitRun:
    """What one pass over a split gathered: per-class runs, items per family, items with each class."""

    classes: dict[str, ClassRun] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    with_class: dict[str, dict[str, int]] = field(default_factory=dict)
    images: int = 0

    def add(self, dets: Detections, truth: Truth, names: Sequence[str], counted_as: Sequence[str]) -> None:
        """One image: its detections at the run's floor, its truth, the keys its item counts under (none: empty)."""
        self.images += 1
        matched = {i for i, _, _ in match(dets, truth, MATCH_IOU)}
        items = truth.xyxy[np.asarray([names[c] == ITEM for c in truth.class_id.tolist()], dtype=bool)]
        cx, cy = (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2, (dets.xyxy[:, 1] + dets.xyxy[:, 3]) / 2
        for i, c in enumerate(dets.class_id.tolist()):
            run = self.classes.setdefault(names[c], ClassRun())
            run.confidence.append(float(dets.confidence[i]))
            run.hit.append(i in matched)
            inside = (items[:, 0] <= cx[i]) & (cx[i] <= items[:, 2]) & (items[:, 1] <= cy[i]) & (cy[i] <= items[:, 3])
            run.on_item.append(bool(inside.any()))
        present = {names[c] for c in truth.class_id.tolist()}
        for c in truth.class_id.tolist():
            self.classes.setdefault(names[c], ClassRun()).truths += 1
        for key in counted_as:
            self.items[key] = self.items.get(key, 0) + 1
            counts = self.with_class.setdefault(key, {})
            for name in present:
                counts[name] = counts.get(name, 0) + 1


def choose(run: SplitRun, costs: Costs, floor: float, classes: Sequence[str] = DEFECT_CLASSES) -> dict[str, Any]:
    """The cheapest threshold of every class with truths (ties: the higher one), with its figures."""
    out: dict[str, Any] = {}
    for name in classes:
        cr = run.classes.get(name)
        if cr is None or cr.truths == 0:
            continue
        c_miss, c_false = costs.of(name)
        best: tuple[float, float] | None = None
        for t in (x for x in GRID if x >= floor - 1e-9):
            tp, fp = cr.counts(t)
            cost = c_miss * (cr.truths - tp) + c_false * fp
            if best is None or cost <= best[1] + 1e-9:
                best = (t, cost)
        assert best is not None
        tp, fp = cr.counts(best[0])
        out[name] = {
            "threshold": best[0],
            "recall": round(tp / cr.truths, 4),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "truths": cr.truths,
            "misses": cr.truths - tp,
            "false_alarms": fp,
            "cost": round(best[1], 3),
            "cost_miss": c_miss,
            "cost_false": c_false,
        }
    return out


def base_rates(run: SplitRun) -> dict[str, dict[str, float]]:
    """Share of the items of each family (and of all) that carry at least one defect of each class."""
    return {
        fam: {name: round(run.with_class.get(fam, {}).get(name, 0) / n, 4) for name in DEFECT_CLASSES}
        for fam, n in sorted(run.items.items())
        if n > 0
    }


def sidecar_family(image: Path) -> tuple[bool, str | None]:
    """(a sidecar exists, the item's family or None for an empty bench) from ``meta/<split>/<stem>.json``."""
    parts = list(image.parts)
    if "images" not in parts:
        return False, None
    k = len(parts) - 1 - parts[::-1].index("images")
    side = Path(*parts[:k], "meta", *parts[k + 1 :]).with_suffix(".json")
    if not side.is_file():
        return False, None
    meta = json.loads(side.read_text(encoding="utf-8"))
    return True, (None if meta.get("empty") else meta.get("family"))


def measure(
    detect: Callable[[Path], Detections],
    images: Sequence[Path],
    truth_of: Callable[[Path], Truth],
    names: Sequence[str],
) -> SplitRun:
    """One pass of ``detect`` over labelled images; an image without a sidecar counts as an item under ``all`` only."""
    run = SplitRun()
    for path in images:
        has_side, family = sidecar_family(path)
        keys = (family, ALL_FAMILIES) if family is not None else (() if has_side else (ALL_FAMILIES,))
        run.add(detect(path), truth_of(path), names, keys)
    return run


def record(run: SplitRun, costs: Costs, floor: float, dataset: Mapping[str, Any], split: str) -> dict[str, Any]:
    """The ``operating_points`` record of a version's meta (checked by the loader the station uses)."""
    rec = {
        "classes": choose(run, costs, floor),
        "base_rate": base_rates(run),
        "items": dict(sorted(run.items.items())),
        "images": run.images,
        "match_iou": MATCH_IOU,
        "run_confidence": floor,
        "costs": costs.source,
        "dataset": dict(dataset),
        "split": split,
    }
    parse_operating_points(rec, "the chosen operating points")
    return rec


def choose_for_version(
    version: str,
    data_yaml: Path,
    *,
    split: str = "val",
    root: Path | None = None,
    costs_file: Path = DEFAULT_COSTS,
    floor: float = 0.05,
    threads: int | None = None,
    limit: int | None = None,
    tiling: Tiling = "off",
) -> dict[str, Any]:
    """Run the version's served detector over the split at ``floor``, choose, store in meta and card.

    ``tiling`` must be the station's: a model served on native-resolution tiles sees more, and
    more confidently, than on the shrunk frame, so its operating points are chosen on the tiles.
    """
    costs = load_costs(costs_file)
    spec = read_data_yaml(data_yaml)
    images = spec.image_paths(split)[:limit] if limit else spec.image_paths(split)
    if not images:
        raise ValueError(f"{data_yaml}: the {split!r} split has no images")
    base = registry.root_dir(root)
    meta = registry.load_meta(version, base)
    cfg = DetectorConfig(
        confidence=floor, imgsz=int(meta.get("imgsz", 640)), threads=runtime.configure(threads), tiling=tiling
    )
    detector = TilingDetector.as_configured(load_detector(cfg, registry.check_version(version, base), version), cfg)

    def detect(path: Path) -> Detections:
        return detector.detect([Frame(image=read_image(path), camera_id="thresholds")])[0]

    def truth(path: Path) -> Truth:
        from PIL import Image

        with Image.open(path) as im:  # the header gives the size the labels are normalised to
            w, h = im.size
        return read_yolo_labels(label_path(path), w, h)

    run = measure(detect, images, truth, detector.class_names)
    rec = record(run, costs, floor, fingerprint(spec, splits=(split,)), split)
    rec["tiling"] = tiling
    rec["chosen_at"] = registry.now_iso()
    meta = registry.load_meta(version, base)  # re-read: another command may have changed it meanwhile
    meta[META_KEY] = rec
    registry.save_meta(version, meta, base)
    registry.save_card(version, render_card(meta), base)
    return rec
