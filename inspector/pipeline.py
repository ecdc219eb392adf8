"""The one-way flow: frames -> detections -> grade -> disposition -> Inspection.

The API and the bench station both call :class:`InspectionPipeline.inspect`;
nothing here stores or serves anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from inspector.config import DetectorConfig, Settings
from inspector.detect import Detector, DetectorError, load_detector, warm_up
from inspector.detect.operating import (
    OperatingPoints,
    OperatingPointsError,
    ThresholdedDetector,
    from_meta,
    read_override,
)
from inspector.disposition import Catalogue, Policy, load_catalogue, load_policy, recommend
from inspector.disposition.loaders import serving_catalogue_file
from inspector.errors import InspectorError, Refused
from inspector.grading import (
    BlindSpots,
    FamilyPrediction,
    GradeModel,
    QualityThresholds,
    RubricSet,
    assess_quality,
    grade_item,
    load_rubrics,
)
from inspector.grading.assessment import find_item_box
from inspector.items import ItemInfo, Sku
from inspector.taxonomy import FAMILIES_ONLY, Taxonomy, load_taxonomy
from inspector.types import Detections, Frame, Inspection, View

log = logging.getLogger(__name__)


@runtime_checkable
class InspectionPipeline(Protocol):
    """What the API and the station need from the pipeline."""

    @property
    def model_version(self) -> str: ...

    @property
    def policy_version(self) -> str: ...

    @property
    def rubric_version(self) -> str: ...

    def inspect(
        self, frames: Sequence[Frame], item: ItemInfo, *, inspection_id: str, station_id: str = "bench-1"
    ) -> Inspection:
        """Run every stage on the views of one item. Blocking: call it off the event loop.

        An item that cannot be inspected raises :class:`~inspector.errors.Refused`.
        """
        ...


class FamilyModel(Protocol):
    """Tells which product family is on the bench (the wrong-item check)."""

    def predict(self, image: Any, box: tuple[float, float, float, float]) -> FamilyPrediction: ...


class PipelineError(RuntimeError):
    """The pipeline could not be built (no model, bad rubric or policy file)."""


class Pipeline:
    """Detector + rubric grader + policy recommender, wired for one station.

    The detector is shared by every request; ultralytics predictors are not
    thread-safe, so calls into it are serialised by a lock. The policy can be
    swapped at run time (``PUT /v1/policy``) without touching the model.
    """

    def __init__(
        self,
        detector: Detector,
        *,
        rubric: RubricSet,
        policy: Policy,
        catalogue: Catalogue,
        quality: QualityThresholds | None = None,
        family: FamilyModel | None = None,
        learned: dict[str, GradeModel] | None = None,
        blind_spots: bool = True,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        self.detector = detector
        self.taxonomy = taxonomy or FAMILIES_ONLY
        self.blind_spots = blind_spots
        self.rubric = rubric
        self._policy = policy
        self.catalogue = catalogue
        self.quality = quality if quality is not None else rubric.quality
        self.family = family
        self.learned = learned or {}
        self._lock = threading.Lock()

    @property
    def model_version(self) -> str:
        return self.detector.model_version

    @property
    def policy_version(self) -> str:
        return self._policy.version

    @property
    def rubric_version(self) -> str:
        return self.rubric.version

    @property
    def taxonomy_version(self) -> str:
        return self.taxonomy.version

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def operating_note(self) -> str | None:
        """Why the served per-class operating points are not the configured ones (for the readiness check)."""
        operating: OperatingPoints | None = getattr(self.detector, "operating", None)
        return operating.warning if operating is not None else None

    def _blind(self, operating: OperatingPoints | None) -> BlindSpots | None:
        if not self.blind_spots or operating is None or not operating.has_blind_spots:
            return None
        return BlindSpots(recall=operating.recall, base_rate=operating.base_rate)

    def set_policy(self, policy: Policy) -> None:
        """Swap the disposition policy; in-flight inspections keep the one they started with."""
        self._policy = policy

    def set_detector(self, detector: Detector) -> None:
        """Serve another model (a promotion) without a restart."""
        with self._lock:
            self.detector = detector

    def inspect(
        self, frames: Sequence[Frame], item: ItemInfo, *, inspection_id: str, station_id: str = "bench-1"
    ) -> Inspection:
        if not frames:
            raise Refused("an inspection needs at least one image")
        try:
            return self._inspect(frames, item, inspection_id, station_id)
        except InspectorError:
            raise
        except ValueError as exc:  # an item the rubric, the catalogue or the policy cannot take
            raise Refused(f"the item cannot be inspected: {exc}") from exc

    def _inspect(self, frames: Sequence[Frame], item: ItemInfo, inspection_id: str, station_id: str) -> Inspection:
        policy = self._policy
        t0 = time.perf_counter()
        qualities = [assess_quality(f.image, self.quality) for f in frames]
        t1 = time.perf_counter()
        with self._lock:
            detector = self.detector
            detections = detector.detect(frames)
        t2 = time.perf_counter()
        sku = self.catalogue.resolve(item.sku, item)
        family = self._family(frames, detections)
        operating: OperatingPoints | None = getattr(detector, "operating", None)
        grade = grade_item(
            detections,
            rubric=self.rubric,
            sku=sku,
            item=item,
            qualities=qualities,
            family=family,
            learned=self.learned,
            class_confidence=operating.thresholds if operating is not None else None,
            blind_spots=self._blind(operating),
            taxonomy=self.taxonomy,
        )
        t3 = time.perf_counter()
        disposition = recommend(grade, sku=sku, item=item, policy=policy, taxonomy=self.taxonomy)
        t4 = time.perf_counter()
        return Inspection(
            id=inspection_id,
            # a view decoded smaller for the model reports its boxes on the picture as sent
            views=tuple(View(frame=f, detections=f.to_full(d)) for f, d in zip(frames, detections, strict=True)),
            grade=grade,
            disposition=disposition,
            model_version=detector.model_version,
            item=item_record(item, sku) | self._mapping(item, sku),
            timings_ms={
                "quality": (t1 - t0) * 1000,
                "detect": (t2 - t1) * 1000,
                "grade": (t3 - t2) * 1000,
                "disposition": (t4 - t3) * 1000,
                "pipeline": (t4 - t0) * 1000,
            },
            station_id=station_id,
        )

    def _mapping(self, item: ItemInfo, sku: Sku | None) -> dict[str, Any]:
        """How the item's category was mapped (rubric, family, value table), for the record."""
        category = sku.category if sku is not None else item.category
        return {"taxonomy": self.taxonomy.resolve(category).to_dict()} if category is not None else {}

    def _family(self, frames: Sequence[Frame], detections: Sequence[Detections]) -> FamilyPrediction | None:
        """The family of the most confidently found item over all views, when a classifier is loaded."""
        if self.family is None:
            return None
        best: tuple[float, int, tuple[float, float, float, float]] | None = None
        for i, dets in enumerate(detections):
            found = find_item_box(dets, self.rubric.min_confidence)
            if found is not None:
                conf = float(dets.confidence[found[0]])
                if best is None or conf > best[0]:
                    best = (conf, i, found[1])
        if best is None:
            return None
        return self.family.predict(frames[best[1]].image, best[2])


def item_record(item: ItemInfo, sku: Sku | None = None) -> dict[str, Any]:
    """The JSON form of what is told about the item; with its catalogue entry, completed from it."""
    out: dict[str, Any] = {
        "rma": item.rma,
        "lpn": item.lpn,
        "sku": item.sku,
        "category": item.category or (sku.category if sku else None),
        "return_reason": item.return_reason,
        "price": item.price,
        "days_since_sale": item.days_since_sale,
        "flags": sorted(item.flags),
    }
    if item.line is not None:  # only when named: the record (and request hash) of an item without one is as before
        out["line"] = item.line
    if sku is not None:
        out["catalogue"] = {"sku": sku.sku, "category": sku.category, "price_new": sku.price_new, "name": sku.name}
        if sku.extra:
            out["catalogue"]["extra"] = dict(sku.extra)
    return out


def load_serving_detector(settings: Settings, weights: Path, version: str | None) -> Detector:
    """A registered version's detector, at start-up or for a hot swap alike.

    It runs at the size and confidence the version was trained and evaluated at unless the
    configuration sets them, and is warmed on a blank frame so that the set-up is paid here,
    not by the first item on the bench.
    """
    from inspector.training.artifacts import model_file

    cfg = settings.detector
    served = served_detector_config(settings, version)
    operating = serving_operating_points(settings, version) if cfg.class_thresholds else None
    default = served.confidence  # the item class and any class without its own threshold
    if operating is not None:  # run at the lowest class threshold; each class is kept from its own below
        served = served.model_copy(update={"confidence": operating.lowest(default)})
    detector = load_detector(served, model_file(served, weights), version)
    if served.tiling != "off":
        from inspector.detect.tiling import TilingDetector

        detector = TilingDetector.from_config(detector, served)
    if operating is not None:
        detector = ThresholdedDetector(detector, operating, default)
    if cfg.warmup:
        warm_up(detector, (settings.camera.width, settings.camera.height), cfg.warmup)
    return detector


def served_detector_config(settings: Settings, version: str | None) -> DetectorConfig:
    """The detector settings a version is served with: its own input size and confidence, unless set."""
    from inspector.registry import serving_hints

    cfg = settings.detector
    update = {k: v for k, v in serving_hints(version, settings.registry.root).items() if k not in cfg.model_fields_set}
    return cfg.model_copy(update=update) if update else cfg


def serving_operating_points(settings: Settings, version: str | None) -> OperatingPoints | None:
    """The version's per-class operating points, with the configured override file over them.

    A missing or corrupt override is logged and the card's numbers are served, marked with the
    reason (``/v1/ready`` shows it); a corrupt record in the card serves the single confidence.
    """
    from inspector.registry import RegistryError, load_meta

    card: OperatingPoints | None = None
    if version is not None:
        try:
            card = from_meta(load_meta(version, settings.registry.root), version)
        except (RegistryError, OperatingPointsError) as exc:
            log.error("per-class operating points not served: %s", exc)
    path = settings.detector.thresholds_file
    if path is None:
        return card
    base = card if card is not None else OperatingPoints(thresholds={}, source="no operating points")
    try:
        return base.overridden_by(read_override(path))
    except OperatingPointsError as exc:
        why = f"{exc}; serving " + (f"the operating points of the {card.source}" if card else "one confidence")
        log.error("%s", why)
        return OperatingPoints(base.thresholds, base.recall, base.base_rate, base.source, warning=why)


def build_pipeline(settings: Settings, detector: Detector | None = None) -> Pipeline:
    """Load the serving model, the rubrics, the policy and the catalogue named by the settings.

    Raises :class:`PipelineError` with a one-line reason when any of them is missing or invalid.
    """
    try:
        if detector is None:
            from inspector.registry import resolve_weights

            weights, version = resolve_weights(settings.detector.model, settings.registry.root)
            detector = load_serving_detector(settings, weights, version)
        rubric = load_rubrics(settings.grading.rubric_dir)
        policy = load_policy(settings.disposition.policy_file)
        catalogue = load_catalogue(
            serving_catalogue_file(settings.disposition.catalogue_file, settings.storage.data_dir)
        )
        taxonomy = load_taxonomy(settings.disposition.taxonomy_file)
        family: FamilyModel | None = None
        if settings.grading.family_model is not None:
            from inspector.grading.family import FamilyClassifier

            family = FamilyClassifier.load(settings.grading.family_model)
        learned: dict[str, GradeModel] = {}
        if settings.grading.learned_dir is not None:
            from inspector.grading.learned import load_learned_graders

            learned = dict(load_learned_graders(settings.grading.learned_dir))
    except (DetectorError, FileNotFoundError, ValueError, OSError) as exc:
        raise PipelineError(str(exc)) from exc
    return Pipeline(
        detector,
        rubric=rubric,
        policy=policy,
        catalogue=catalogue,
        family=family,
        learned=learned,
        blind_spots=settings.grading.blind_spots,
        taxonomy=taxonomy,
    )
