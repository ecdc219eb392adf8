"""Core value types that flow one way through the station.

frame -> detections -> grade -> disposition -> inspection record.

These are plain, validated, immutable-by-convention Python objects. JSON schemas
(pydantic) live at the API edge only; here we keep numpy arrays for speed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Image = npt.NDArray[np.uint8]


class ValidationError(ValueError):
    """A core value was built with inconsistent or out-of-range data."""


def utcnow() -> datetime:
    """Timezone-aware now; naive datetimes are refused everywhere in the core."""
    return datetime.now(UTC)


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from one camera: BGR uint8, HxWx3, with its capture time."""

    image: Image
    camera_id: str = "cam0"
    captured_at: datetime = field(default_factory=utcnow)
    # (width, height) of the picture as sent when ``image`` was decoded smaller for the model;
    # inspections report detections and sizes in these coordinates
    full_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray):
            raise ValidationError(f"Frame.image must be a numpy array, got {type(img).__name__}")
        if img.dtype != np.uint8:
            raise ValidationError(f"Frame.image must be uint8, got {img.dtype}")
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValidationError(f"Frame.image must be HxWx3 (BGR), got shape {img.shape}")
        if img.shape[0] < 8 or img.shape[1] < 8:
            raise ValidationError(f"Frame.image is too small: {img.shape[1]}x{img.shape[0]}")
        if not self.camera_id:
            raise ValidationError("Frame.camera_id must not be empty")
        if self.captured_at.tzinfo is None:
            raise ValidationError("Frame.captured_at must be timezone-aware")
        if self.full_size is not None:
            fw, fh = self.full_size
            if fw < img.shape[1] or fh < img.shape[0]:
                raise ValidationError(
                    f"Frame.full_size {fw}x{fh} is smaller than the image {img.shape[1]}x{img.shape[0]}"
                )

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture as taken: ``full_size`` when decoded smaller."""
        return self.full_size or (self.width, self.height)

    def to_full(self, detections: Detections) -> Detections:
        """Detections found in ``image`` in the coordinates of the picture as taken."""
        if self.full_size is None:
            return detections
        return detections.scaled(self.full_size[0] / self.width, self.full_size[1] / self.height)


# ----------------------------------------------------------------------- detections


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Columnar detections of one frame (N rows), in pixel xyxy coordinates.

    Columns stay aligned under indexing: ``dets[dets.confidence > 0.5]`` keeps the
    rows whose confidence passes, in every column. ``class_names`` is the model's
    whole labelmap (indexed by ``class_id``), not one name per row.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        conf = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        cls = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValidationError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
        n = xyxy.shape[0]
        if conf.shape[0] != n or cls.shape[0] != n:
            raise ValidationError(
                f"columns are misaligned: xyxy has {n} rows, confidence {conf.shape[0]}, class_id {cls.shape[0]}"
            )
        if n:
            if not np.isfinite(xyxy).all() or not np.isfinite(conf).all():
                raise ValidationError("xyxy and confidence must be finite")
            if (xyxy[:, 2] < xyxy[:, 0]).any() or (xyxy[:, 3] < xyxy[:, 1]).any():
                raise ValidationError("boxes must satisfy x1 <= x2 and y1 <= y2")
            if (conf < 0).any() or (conf > 1).any():
                raise ValidationError("confidence must lie in [0, 1]")
            if (cls < 0).any() or (cls >= len(self.class_names)).any():
                raise ValidationError(f"class_id out of range for {len(self.class_names)} class names")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "class_id", cls)
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @classmethod
    def empty(cls, class_names: Sequence[str]) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), dtype=np.float32),
            confidence=np.zeros((0,), dtype=np.float32),
            class_id=np.zeros((0,), dtype=np.int64),
            class_names=tuple(class_names),
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate detections that share one labelmap."""
        if not parts:
            raise ValidationError("merge needs at least one Detections")
        names = parts[0].class_names
        if any(p.class_names != names for p in parts):
            raise ValidationError("cannot merge detections with different labelmaps")
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            class_names=names,
        )

    def scaled(self, sx: float, sy: float) -> Detections:
        """The same rows with boxes scaled per axis (another resolution of the same picture)."""
        return Detections(
            xyxy=self.xyxy * np.array([sx, sy, sx, sy], dtype=np.float32),
            confidence=self.confidence,
            class_id=self.class_id,
            class_names=self.class_names,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: int | slice | Sequence[int] | BoolArray | IntArray) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.asarray(index) if not isinstance(index, slice) else index
        if isinstance(idx, np.ndarray) and idx.dtype == np.bool_ and idx.shape != (len(self),):
            raise ValidationError(f"boolean mask has shape {idx.shape}, expected ({len(self)},)")
        return Detections(
            xyxy=self.xyxy[idx],
            confidence=self.confidence[idx],
            class_id=self.class_id[idx],
            class_names=self.class_names,
        )

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self)):
            yield self.row(i)

    def row(self, i: int) -> Detection:
        x1, y1, x2, y2 = (float(v) for v in self.xyxy[i])
        cid = int(self.class_id[i])
        return Detection(
            index=i,
            xyxy=(x1, y1, x2, y2),
            confidence=float(self.confidence[i]),
            class_id=cid,
            class_name=self.class_names[cid],
        )

    @property
    def names(self) -> list[str]:
        """The class name of every row."""
        return [self.class_names[int(c)] for c in self.class_id]

    @property
    def area(self) -> FloatArray:
        return ((self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])).astype(np.float32)

    def of_class(self, *names: str) -> Detections:
        """Rows whose class is one of ``names`` (unknown names select nothing)."""
        wanted = [i for i, n in enumerate(self.class_names) if n in names]
        return self[np.isin(self.class_id, wanted)]

    def to_records(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self]


@dataclass(frozen=True, slots=True)
class Detection:
    """One row of :class:`Detections`, for reasons and JSON."""

    index: int
    xyxy: tuple[float, float, float, float]
    confidence: float
    class_id: int
    class_name: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "xyxy": [round(v, 2) for v in self.xyxy],
            "confidence": round(self.confidence, 4),
            "class_id": self.class_id,
            "class_name": self.class_name,
        }


# -------------------------------------------------------------------------- grades


class GradeLevel(enum.StrEnum):
    """Condition grades. A..D are ordered best to worst; the rest are outcomes."""

    A = "A"  # like new
    B = "B"  # light cosmetic wear
    C = "C"  # heavy cosmetic damage or function at risk
    D = "D"  # damaged, salvage only
    WRONG_ITEM = "WRONG_ITEM"
    EMPTY = "EMPTY"
    UNREADABLE = "UNREADABLE"

    @property
    def is_condition(self) -> bool:
        return self in CONDITION_GRADES

    @property
    def rank(self) -> int:
        """0 for A .. 3 for D; outcomes rank after D."""
        order = list(GradeLevel)
        return order.index(self)


CONDITION_GRADES: tuple[GradeLevel, ...] = (GradeLevel.A, GradeLevel.B, GradeLevel.C, GradeLevel.D)


@dataclass(frozen=True, slots=True)
class Reason:
    """A sentence an operator can read, with the detections (by view and row) behind it."""

    text: str
    code: str = ""
    detections: tuple[tuple[int, int], ...] = ()  # (view index, row index)
    # The figures and names in ``text``, raw: the operator page says the reason in its own language from these.
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "detections": [list(d) for d in self.detections],
            "params": dict(self.params),
        }


@dataclass(frozen=True, slots=True)
class Grade:
    """The condition grade of one item, with a probability per grade and its reasons."""

    level: GradeLevel
    probabilities: Mapping[GradeLevel, float]
    reasons: tuple[Reason, ...] = ()
    rubric_version: str = ""
    source: str = "rubric"  # rubric | learned | override

    def __post_init__(self) -> None:
        probs = {GradeLevel(k): float(v) for k, v in self.probabilities.items()}
        if any(p < -1e-9 or p > 1 + 1e-9 for p in probs.values()):
            raise ValidationError("grade probabilities must lie in [0, 1]")
        total = sum(probs.values())
        if probs and abs(total - 1.0) > 1e-6:
            raise ValidationError(f"grade probabilities must sum to 1, got {total:.6f}")
        object.__setattr__(self, "probabilities", probs)

    @classmethod
    def certain(cls, level: GradeLevel, reasons: Sequence[Reason] = (), rubric_version: str = "") -> Grade:
        return cls(level=level, probabilities={level: 1.0}, reasons=tuple(reasons), rubric_version=rubric_version)

    @property
    def confidence(self) -> float:
        return float(self.probabilities.get(self.level, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "confidence": round(self.confidence, 4),
            "probabilities": {k.value: round(v, 4) for k, v in self.probabilities.items()},
            "reasons": [r.to_dict() for r in self.reasons],
            "rubric_version": self.rubric_version,
            "source": self.source,
        }


# ---------------------------------------------------------------------- disposition


class DispositionPath(enum.StrEnum):
    """Where a returned item goes next."""

    RESTOCK = "RESTOCK"
    OPEN_BOX = "OPEN_BOX"
    REFURBISH = "REFURBISH"
    REPAIR = "REPAIR"
    RETURN_TO_VENDOR = "RETURN_TO_VENDOR"
    LIQUIDATE = "LIQUIDATE"
    DONATE = "DONATE"
    HARVEST_PARTS = "HARVEST_PARTS"
    RECYCLE = "RECYCLE"
    HAZARDOUS_DISPOSAL = "HAZARDOUS_DISPOSAL"
    QUARANTINE = "QUARANTINE"
    MANUAL_REVIEW = "MANUAL_REVIEW"


@dataclass(frozen=True, slots=True)
class Alternative:
    """One path the recommender weighed, with its expected net recovery value."""

    path: DispositionPath
    expected_value: float
    allowed: bool = True
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path.value,
            "expected_value": round(self.expected_value, 2),
            "allowed": self.allowed,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Disposition:
    """The recommendation: a path, every alternative weighed, the rule that fired, reasons."""

    path: DispositionPath
    expected_value: float
    alternatives: tuple[Alternative, ...] = ()
    rule: str | None = None
    reasons: tuple[Reason, ...] = ()
    policy_version: str = ""
    expected_regret: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path.value,
            "expected_value": round(self.expected_value, 2),
            "expected_regret": round(self.expected_regret, 2),
            "rule": self.rule,
            "reasons": [r.to_dict() for r in self.reasons],
            "alternatives": [a.to_dict() for a in self.alternatives],
            "policy_version": self.policy_version,
        }


# ---------------------------------------------------------------------- inspection


@dataclass(frozen=True, slots=True)
class AnomalyRegion:
    """A connected patch of the item the anomaly model finds strange and no detection explains."""

    xyxy: tuple[float, float, float, float]  # in the view's pixels, as sent
    share: float  # its area over the item's (the scored crop's) area
    peak: float  # the highest anomaly score inside it, in the model's units

    def to_dict(self) -> dict[str, Any]:
        return {"xyxy": [round(v, 2) for v in self.xyxy], "share": round(self.share, 5), "peak": round(self.peak, 4)}


@dataclass(frozen=True, slots=True, eq=False)
class ViewAnomaly:
    """What the anomaly model (learned from good items only) made of one view's item crop.

    ``heat`` is the anomaly map at the crop's size, kept for the heat-map picture only (never serialised).
    """

    score: float
    threshold: float
    family: str
    model_version: str
    crop: tuple[float, float, float, float]  # the scored item crop, in the view's pixels as sent
    regions: tuple[AnomalyRegion, ...] = ()
    pixel_threshold: float | None = None  # a pixel at or above it is anomalous (None: ``threshold``)
    heat: FloatArray | None = field(default=None, repr=False)

    @property
    def anomalous(self) -> bool:
        return self.score >= self.threshold

    @property
    def pixel_level(self) -> float:
        return self.threshold if self.pixel_threshold is None else self.pixel_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "pixel_threshold": round(self.pixel_level, 4),
            "anomalous": self.anomalous,
            "family": self.family,
            "model_version": self.model_version,
            "crop": [round(v, 2) for v in self.crop],
            "regions": [r.to_dict() for r in self.regions],
        }


@dataclass(frozen=True, slots=True)
class View:
    """One image of an item, what the detector found on it and, when scored, what the anomaly model found."""

    frame: Frame
    detections: Detections
    anomaly: ViewAnomaly | None = None


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything the station concluded about one returned item."""

    id: str
    views: tuple[View, ...]
    grade: Grade
    disposition: Disposition
    model_version: str
    created_at: datetime = field(default_factory=utcnow)
    item: Mapping[str, Any] = field(default_factory=dict)
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    station_id: str = "bench-1"

    def __post_init__(self) -> None:
        if not self.id:
            raise ValidationError("Inspection.id must not be empty")
        if not self.views:
            raise ValidationError("an inspection needs at least one view")
        if self.created_at.tzinfo is None:
            raise ValidationError("Inspection.created_at must be timezone-aware")
