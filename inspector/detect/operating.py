"""Per-class operating points: each class kept from its own confidence, chosen by the cost of its errors.

A missed crack costs more than a false stain, so one confidence for every class is the wrong
trade. ``inspector models thresholds`` picks a threshold per class on validation data and stores
it, with the class's recall there and its base rate per family, in the version's ``meta.json``
(``operating_points``). The served detector runs at the lowest of them and
:class:`ThresholdedDetector` keeps each class from its own; the grader reads the same numbers
(:attr:`ThresholdedDetector.operating`) for its per-class floors and its blind-spot prior.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspector.detect.base import Detector
from inspector.types import Detections, Frame

META_KEY = "operating_points"


class OperatingPointsError(ValueError):
    """An operating-points record or override file cannot be used; the message names the file and the fault."""


@dataclass(frozen=True, slots=True)
class OperatingPoints:
    """Thresholds per class, with the recall measured at them and base rates per family (both optional)."""

    thresholds: Mapping[str, float]
    recall: Mapping[str, float] = field(default_factory=dict)
    base_rate: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    source: str = "model card"
    warning: str | None = None  # why an override was not used: logged, and shown by the readiness check

    @property
    def has_blind_spots(self) -> bool:
        """Recall and base rates are both there: the grader can weigh what the detector misses."""
        return bool(self.recall) and bool(self.base_rate)

    def lowest(self, default: float) -> float:
        return min([default, *self.thresholds.values()])

    def overridden_by(self, other: OperatingPoints) -> OperatingPoints:
        """``other``'s thresholds over these; its recalls and base rates when it has them."""
        return OperatingPoints(
            thresholds={**self.thresholds, **other.thresholds},
            recall=other.recall or self.recall,
            base_rate=other.base_rate or self.base_rate,
            source=f"{other.source} over {self.source}",
        )


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OperatingPointsError(f"{where}: {value!r} is not a number")
    if not 0.0 <= float(value) <= 1.0:
        raise OperatingPointsError(f"{where}: {value} is not in [0, 1]")
    return float(value)


def parse_operating_points(record: Any, source: str) -> OperatingPoints:
    """Read ``{"classes": {name: {"threshold", "recall"}}, "base_rate": {family: {name: share}}}``."""
    if not isinstance(record, Mapping) or not isinstance(record.get("classes"), Mapping) or not record["classes"]:
        raise OperatingPointsError(f"{source}: no 'classes' mapping of class name -> threshold")
    thresholds: dict[str, float] = {}
    recall: dict[str, float] = {}
    for name, entry in record["classes"].items():
        if not isinstance(entry, Mapping) or "threshold" not in entry:
            raise OperatingPointsError(f"{source}: class {name!r} has no 'threshold'")
        thresholds[str(name)] = _fraction(entry["threshold"], f"{source}: {name} threshold")
        if entry.get("recall") is not None:
            recall[str(name)] = _fraction(entry["recall"], f"{source}: {name} recall")
    rates: dict[str, dict[str, float]] = {}
    raw_rates = record.get("base_rate") or {}
    if not isinstance(raw_rates, Mapping):
        raise OperatingPointsError(f"{source}: 'base_rate' must map a family to class shares")
    for family, shares in raw_rates.items():
        if not isinstance(shares, Mapping):
            raise OperatingPointsError(f"{source}: base_rate of {family!r} must map a class to a share")
        rates[str(family)] = {str(k): _fraction(v, f"{source}: base rate {family}/{k}") for k, v in shares.items()}
    return OperatingPoints(thresholds=thresholds, recall=recall, base_rate=rates, source=source)


def from_meta(meta: Mapping[str, Any], version: str | None) -> OperatingPoints | None:
    """The operating points a version's meta stores, or None when it has none."""
    record = meta.get(META_KEY)
    if record is None:
        return None
    return parse_operating_points(record, f"model card of {version or 'the model'}")


def read_override(path: Path) -> OperatingPoints:
    """An override file (JSON, the same shape as the meta's record); a clear error when missing or corrupt."""
    if not path.is_file():
        raise OperatingPointsError(f"thresholds file {path} does not exist")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OperatingPointsError(f"thresholds file {path} is corrupt ({exc})") from exc
    return parse_operating_points(record, f"thresholds file {path}")


def keep_by_class(dets: Detections, thresholds: Mapping[str, float], default: float) -> Detections:
    """The rows at or above their own class's threshold (``default`` for a class without one)."""
    if not len(dets):
        return dets
    floor = np.array([thresholds.get(n, default) for n in dets.class_names], dtype=np.float32)
    return dets[dets.confidence >= floor[dets.class_id]]


class ThresholdedDetector:
    """A detector run at the lowest per-class threshold whose output keeps each class from its own."""

    def __init__(self, inner: Detector, operating: OperatingPoints, default: float) -> None:
        self.inner = inner
        self.operating = operating
        self.default = default

    @property
    def model_version(self) -> str:
        return self.inner.model_version

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.inner.class_names

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [keep_by_class(d, self.operating.thresholds, self.default) for d in self.inner.detect(frames)]

    def __getattr__(self, name: str) -> Any:  # the backend's own settings (imgsz, confidence) stay readable
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
