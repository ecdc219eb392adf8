"""The one-way flow: frames -> detections -> grade -> disposition -> Inspection.

The API and the bench station both call :class:`InspectionPipeline.inspect`;
nothing here stores or serves anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from inspector.anomaly.base import AnomalyError, AnomalyScorer
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
from inspector.labelmap import ITEM
from inspector.taxonomy import FAMILIES_ONLY, Taxonomy, load_taxonomy
from inspector.types import AnomalyRegion, Detections, Frame, Inspection, View, ViewAnomaly

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


# A detection explains the anomaly map inside its box grown by this share of its size (and a few pixels):
# the detector's boxes are tight, the anomaly map's blobs bleed past them.
EXPLAINED_MARGIN = 0.1
EXPLAINED_MARGIN_PX = 4
# The item crop scored is the item box grown by this share per side: the crops the anomaly models learned
# from (inspector.anomaly.features.CROP_MARGIN; a test keeps the two equal without importing torch here).
ANOMALY_CROP_MARGIN = 0.04

Box = tuple[float, float, float, float]


def unexplained_regions(
    heat: np.ndarray[Any, Any], threshold: float, explained: Sequence[Box], min_area: float, item: Box | None = None
) -> list[tuple[tuple[int, int, int, int], float, float]]:
    """Connected patches of ``heat`` at or above ``threshold`` on the ``item`` but outside the ``explained`` boxes.

    Boxes are in the map's pixels (``item`` None: the whole map). Returns (x1, y1, x2, y2), share of
    the item's area and peak for each patch of at least ``min_area`` of the item. The map inside each
    explained box (grown by a margin) and off the item is cleared first, so damage the detector
    already found is not counted twice and the bench around the item is not counted at all.
    """
    h, w = heat.shape[:2]
    ix1, iy1, ix2, iy2 = item if item is not None else (0.0, 0.0, float(w), float(h))
    on_item = np.zeros((h, w), dtype=bool)
    on_item[max(0, round(iy1)) : min(h, round(iy2)), max(0, round(ix1)) : min(w, round(ix2))] = True
    free = np.where(on_item, np.asarray(heat, dtype=np.float32), np.float32(0.0))
    area_of_item = max(1.0, float(on_item.sum()))
    for x1, y1, x2, y2 in explained:
        mx = EXPLAINED_MARGIN * (x2 - x1) + EXPLAINED_MARGIN_PX
        my = EXPLAINED_MARGIN * (y2 - y1) + EXPLAINED_MARGIN_PX
        c1, r1 = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
        c2, r2 = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        if c2 > c1 and r2 > r1:
            free[r1:r2, c1:c2] = 0.0
    mask = (free >= threshold).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for k in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_area * area_of_item) + 1:  # noise never loops
        x, y, bw, bh, area = (int(v) for v in stats[k])
        peak = float(free[y : y + bh, x : x + bw][labels[y : y + bh, x : x + bw] == k].max())
        out.append(((x, y, x + bw, y + bh), area / area_of_item, peak))
    out.sort(key=lambda r: -r[2])
    return out


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
        anomaly: AnomalyScorer | None = None,
        anomaly_min_area: float = 0.005,
        anomaly_note: str | None = None,
    ) -> None:
        self.detector = detector
        self.anomaly = anomaly
        self.anomaly_min_area = anomaly_min_area
        self.anomaly_note = anomaly_note  # why no anomaly model is served (None: one is, or none was asked for)
        self._anomaly_lock = threading.Lock()  # one crop at a time through the anomaly model, as the detector
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

    @property
    def anomaly_status(self) -> dict[str, Any]:
        """Whether an anomaly model is served, its version and families, or why not (for the readiness check)."""
        scorer = self.anomaly
        if scorer is None:
            detail = f"anomaly model not loaded: {self.anomaly_note}" if self.anomaly_note else "no anomaly model"
            return {"served": False, "version": None, "families": [], "detail": detail}
        version = scorer.version
        families = sorted(scorer.families)
        detail = f"anomaly model {version} loaded for {', '.join(families) or 'no family'}"
        return {"served": True, "version": version, "families": families, "detail": detail}

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

    def set_anomaly(self, scorer: AnomalyScorer) -> None:
        """Serve another anomaly model (a promotion) without a restart; a crop being scored finishes first."""
        with self._anomaly_lock:
            self.anomaly = scorer
            self.anomaly_note = None

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
        floors = operating.thresholds if operating is not None else {}
        t_anomaly = time.perf_counter()
        anomalies = self._anomalies(frames, detections, self._item_family(item, sku, family), floors)
        anomaly_ms = (time.perf_counter() - t_anomaly) * 1000
        grade = grade_item(
            detections,
            rubric=self.rubric,
            sku=sku,
            item=item,
            qualities=qualities,
            family=family,
            learned=self.learned,
            class_confidence=floors or None,
            blind_spots=self._blind(operating),
            taxonomy=self.taxonomy,
            anomalies=anomalies,
        )
        t3 = time.perf_counter()
        disposition = recommend(grade, sku=sku, item=item, policy=policy, taxonomy=self.taxonomy)
        t4 = time.perf_counter()
        return Inspection(
            id=inspection_id,
            # a view decoded smaller for the model reports its boxes on the picture as sent
            views=tuple(
                View(frame=f, detections=f.to_full(d), anomaly=a)
                for f, d, a in zip(frames, detections, anomalies, strict=True)
            ),
            grade=grade,
            disposition=disposition,
            model_version=detector.model_version,
            item=item_record(item, sku) | self._mapping(item, sku),
            timings_ms={
                "quality": (t1 - t0) * 1000,
                "detect": (t2 - t1) * 1000,
                "grade": (t3 - t2) * 1000 - anomaly_ms,
                **({"anomaly": anomaly_ms} if self.anomaly is not None else {}),
                "disposition": (t4 - t3) * 1000,
                "pipeline": (t4 - t0) * 1000,
            },
            station_id=station_id,
        )

    def _item_family(self, item: ItemInfo, sku: Sku | None, predicted: FamilyPrediction | None) -> str | None:
        """The family the item's anomaly model is chosen by: the one its category maps to, else the classifier's."""
        told = sku.category if sku is not None else item.category
        if told is not None:
            mapped = self.taxonomy.resolve(told).family
            if mapped is not None:
                return mapped
        return predicted.family if predicted is not None else None

    def _anomalies(
        self,
        frames: Sequence[Frame],
        detections: Sequence[Detections],
        family: str | None,
        floors: Mapping[str, float],
    ) -> list[ViewAnomaly | None]:
        """Each view's item crop scored by the family's anomaly model, with the regions no detection explains.

        A detection explains its box when the grader counts it: at or above its class's operating point
        (``floors``), else the rubric's ``min_confidence``; a fainter one leaves the damage unexplained.

        No model, no family, or a family the model lacks: nothing is scored. A model that fails on a view
        is logged and that view goes without (the detector's verdict stands).
        """
        scorer = self.anomaly
        if scorer is None or family is None or family not in scorer.families:
            return [None] * len(frames)
        out: list[ViewAnomaly | None] = []
        for frame, dets in zip(frames, detections, strict=True):
            try:
                with self._anomaly_lock:
                    out.append(self._score_view(scorer, frame, dets, family, floors))
            except AnomalyError as exc:
                log.warning("anomaly model skipped on %s: %s", frame.camera_id, exc)
                out.append(None)
        return out

    def _score_view(
        self, scorer: AnomalyScorer, frame: Frame, dets: Detections, family: str, floors: Mapping[str, float]
    ) -> ViewAnomaly:
        found = find_item_box(dets, self.rubric.min_confidence)
        item: Box = (0.0, 0.0, float(frame.width), float(frame.height))
        x1, y1, x2, y2 = (0, 0, frame.width, frame.height)
        if found is not None:  # the item box grown as the models learned it; the whole frame when there is none
            bx1, by1, bx2, by2 = found[1]
            mx, my = (bx2 - bx1) * ANOMALY_CROP_MARGIN, (by2 - by1) * ANOMALY_CROP_MARGIN
            cx1, cy1 = max(0, int(np.floor(bx1 - mx))), max(0, int(np.floor(by1 - my)))
            cx2, cy2 = min(frame.width, int(np.ceil(bx2 + mx))), min(frame.height, int(np.ceil(by2 + my)))
            if cx2 - cx1 >= 8 and cy2 - cy1 >= 8:
                x1, y1, x2, y2 = cx1, cy1, cx2, cy2
                item = (bx1, by1, bx2, by2)
        # the scorers take RGB; cvtColor reads the window in place (820x620: 0.07 ms, a reversed numpy copy 4.7 ms)
        crop = np.asarray(cv2.cvtColor(frame.image[y1:y2, x1:x2], cv2.COLOR_BGR2RGB), np.uint8)
        result = scorer.score(crop, family)
        heat = np.asarray(result.heat, dtype=np.float32)
        if heat.shape[:2] != crop.shape[:2]:
            resized = cv2.resize(heat, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
            heat = np.asarray(resized, dtype=np.float32)
        explained = [
            (d.xyxy[0] - x1, d.xyxy[1] - y1, d.xyxy[2] - x1, d.xyxy[3] - y1)
            for d in dets
            if d.class_name != ITEM and d.confidence >= floors.get(d.class_name, self.rubric.min_confidence)
        ]
        sx, sy = frame.size[0] / frame.width, frame.size[1] / frame.height  # to the picture as sent
        # regions only on an item the model calls anomalous: the card's false-alarm rate on good items holds
        pixel = float(result.extra.get("pixel_threshold", result.threshold))
        on_crop = (item[0] - x1, item[1] - y1, item[2] - x1, item[3] - y1)
        found_regions = (
            unexplained_regions(heat, pixel, explained, self.anomaly_min_area, on_crop) if result.anomalous else []
        )
        regions = tuple(
            AnomalyRegion(
                xyxy=((x1 + rx1) * sx, (y1 + ry1) * sy, (x1 + rx2) * sx, (y1 + ry2) * sy), share=share, peak=peak
            )
            for (rx1, ry1, rx2, ry2), share, peak in found_regions
        )
        return ViewAnomaly(
            score=float(result.score),
            threshold=float(result.threshold),
            family=family,
            model_version=result.model_version,
            crop=(x1 * sx, y1 * sy, x2 * sx, y2 * sy),
            regions=regions,
            pixel_threshold=pixel,
            heat=heat,
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
    try:
        detector = load_detector(served, model_file(served, weights), version)
    except Exception as exc:
        if served.backend == cfg.backend:  # the backend the configuration asked for: its error is the answer
            raise
        # the version's measured backend (serving_backend) could not be built or loaded here: PyTorch serves
        log.error("the %s backend chosen for %s is not served (%s); serving ultralytics", served.backend, version, exc)
        served = served.model_copy(update={"backend": "ultralytics"})
        detector = load_detector(served, weights, version)
    from inspector.detect.tiling import TilingDetector

    detector = TilingDetector.as_configured(detector, served)
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


def load_serving_anomaly(settings: Settings) -> tuple[AnomalyScorer | None, str | None]:
    """The anomaly model to serve beside the detector, or None and why not.

    A missing or corrupt model never stops the station: it serves the detector alone and
    ``/v1/ready`` says why (the reason is logged too), as it does when none is promoted. It is
    warmed on a blank crop, as the detector is, when ``detector.warmup`` asks for it.
    """
    cfg = settings.anomaly
    if not cfg.enabled:
        return None, "anomaly.enabled is false"
    try:
        from inspector.anomaly.load import load_scorer  # torch: only when an anomaly model is wanted

        scorer: AnomalyScorer = load_scorer(cfg.model, settings.registry.root)
        if settings.detector.warmup and scorer.families:  # its first call pays the set-up, not the first item
            scorer.score(np.full((64, 64, 3), 128, np.uint8), scorer.families[0])
    except (AnomalyError, OSError, ValueError) as exc:
        log.warning("anomaly model not loaded: %s", exc)
        return None, str(exc)
    return scorer, None


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
    scorer, why = load_serving_anomaly(settings)
    return Pipeline(
        detector,
        rubric=rubric,
        policy=policy,
        catalogue=catalogue,
        family=family,
        learned=learned,
        blind_spots=settings.grading.blind_spots,
        taxonomy=taxonomy,
        anomaly=scorer,
        anomaly_min_area=settings.anomaly.min_area,
        anomaly_note=why,
    )
