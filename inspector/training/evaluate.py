"""Measuring a model on a labelled split.

``inspector evaluate`` gives ultralytics' detection metrics of one version on one dataset
split, and then what a person asks of it (:func:`operating_point`): the station's own detector
run at the version's operating point over the split, per-class recall and precision there, how
many defective pictures it flags at all, how many clean ones it raises a false alarm on, and the
worst misses drawn as a contact sheet. The result goes three places at once:
``eval-<dataset>-<split>.json`` in the version folder, the version's ``meta.json``, and its
model card (re-rendered from the meta), so the card shows exactly the numbers the command printed.

:func:`evaluate_split` gives mAP50 of any detector through its own ``detect``: every backend
is measured on the same path (decode, its pre-processing, its forward pass, its NMS), so a
difference in the figure is a difference in what the station would serve.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector import registry, runtime
from inspector.config import DetectorConfig, Tiling
from inspector.data.formats import DatasetSpec, fingerprint, read_data_yaml
from inspector.data.formats.spec import ImageRecord
from inspector.data.formats.yolo import label_boxes, parse_labels
from inspector.detect.base import Detector
from inspector.detect.operating import OperatingPoints, from_meta
from inspector.detect.tiling import TilingDetector
from inspector.labelmap import ITEM
from inspector.metrics import OPERATING_DEFINITIONS, Truth, at_operating_point, map50
from inspector.training.card import render_card, render_evaluation
from inspector.training.plots import write_plots
from inspector.training.run import DEFAULT_WORK_DIR
from inspector.types import Detections


def measure_latency(
    weights: Path, images: list[Path], *, imgsz: int, conf: float, threads: int, model_version: str
) -> dict[str, Any]:
    """Milliseconds per image through the station's own detector, one image at a time."""
    from inspector.detect import load_detector
    from inspector.imageio import read_image
    from inspector.types import Frame

    cfg = DetectorConfig(confidence=conf, imgsz=imgsz, threads=threads)
    det = load_detector(cfg, weights, model_version)
    frames = [Frame(image=read_image(p), camera_id="eval") for p in images]
    if not frames:
        return {}
    det.detect(frames[:1])  # warm-up: first call builds the predictor
    times = []
    for f in frames:
        t0 = time.perf_counter()
        det.detect([f])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {
        "median": round(statistics.median(times), 2),
        "p95": round(p95, 2),
        "mean": round(statistics.fmean(times), 2),
        "images": len(times),
        "threads": threads,
        "imgsz": imgsz,
    }


def evaluate_version(
    version: str,
    data_yaml: Path,
    *,
    split: str = "test",
    root: Path | None = None,
    conf: float | None = None,
    imgsz: int | None = None,
    threads: int | None = None,
    latency_images: int = 20,
    primary: bool = True,
    work_dir: Path = DEFAULT_WORK_DIR,
    tiling: Tiling = "off",
) -> dict[str, Any]:
    """Evaluate a registered version, store the result in the registry, and return it.

    ``tiling`` is the station's (``detector.tiling``): ultralytics' validator sees each picture
    whole, so a model served on native-resolution tiles also gets its mAP through the station's
    tiled detector (``tiled``) and its operating point on the tiles.
    """
    base = registry.root_dir(root)
    weights = registry.check_version(version, base)
    meta = registry.load_meta(version, base)
    spec = read_data_yaml(data_yaml)
    images = spec.image_paths(split)
    if not images:
        raise ValueError(f"{data_yaml}: the {split!r} split has no images")
    # the card's per-class thresholds unless one confidence is asked for; a bad record stops us before any work
    points = from_meta(meta, version) if conf is None else None
    conf = conf if conf is not None else float(meta.get("operating_confidence", 0.25))
    imgsz = imgsz or int(meta.get("imgsz", 640))
    n_threads = runtime.configure(threads)
    key = f"{spec.name}-{split}"

    from inspector.training.ultralytics import validate

    out_dir = (work_dir / "eval" / f"{version}-{key}").resolve()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    ev = validate(weights, spec.description(), split=split, imgsz=imgsz, conf=conf, threads=n_threads, out_dir=out_dir)
    ev["latency_ms"] = measure_latency(
        weights, images[:latency_images], imgsz=imgsz, conf=conf, threads=n_threads, model_version=version
    )
    ev["dataset"] = fingerprint(spec, splits=(split,))
    ev["model_version"] = version
    ev["evaluated_at"] = registry.now_iso()
    ev.pop("figures", None)  # ultralytics' pictures: ours are drawn from the stored numbers below
    if tiling != "off":
        ev["tiled"] = tiled_map(weights, spec, split, version=version, imgsz=imgsz, threads=n_threads, tiling=tiling)
    vdir = registry.version_dir(version, base)
    sheet = vdir / (MISSES_SHEET if primary else f"{key}-{MISSES_SHEET}")
    ev["operating_point"] = operating_point(
        weights,
        spec,
        split,
        version=version,
        conf=conf,
        points=points,
        imgsz=imgsz,
        threads=n_threads,
        sheet=sheet,
        tiling=tiling,
    )
    registry.write_atomic(vdir / f"eval-{key}.json", json.dumps(ev, indent=2) + "\n")

    meta = registry.load_meta(version, base)  # re-read: another command may have changed it meanwhile
    meta.setdefault("evaluations", {})[key] = ev
    if primary or not meta.get("primary_evaluation"):
        meta["primary_evaluation"] = key
    registry.save_meta(version, meta, base)
    registry.save_card(version, render_card(meta), base)
    write_plots(version, base)
    return ev


MISSES_SHEET = "worst_misses.png"


def operating_point(
    weights: Path,
    spec: DatasetSpec,
    split: str,
    *,
    version: str,
    conf: float,
    points: OperatingPoints | None,
    imgsz: int,
    threads: int,
    sheet: Path,
    worst: int = 5,
    tiling: Tiling = "off",
) -> dict[str, Any]:
    """The station's detector over the split at the version's operating point: :func:`at_operating_point`'s figures.

    The detector is the one the station serves: at ``conf``, each class kept from its own
    threshold in ``points`` when given (the version's card's). The ``worst`` largest missed
    defects are drawn on ``sheet`` (left out, and any old sheet removed, when nothing was missed).
    """
    from inspector.detect import load_detector
    from inspector.detect.operating import ThresholdedDetector
    from inspector.training.misses import write_misses_sheet

    cfg = DetectorConfig(
        confidence=points.lowest(conf) if points else conf, imgsz=imgsz, threads=threads, tiling=tiling
    )
    detector = TilingDetector.as_configured(load_detector(cfg, weights, version), cfg)
    if points is not None:
        detector = ThresholdedDetector(detector, points, conf)
    records = spec.split(split)
    preds, truths = _detect_split(detector, records)
    model_names = tuple(detector.class_names)  # the ids' meaning; the dataset's when the model names fewer
    names = model_names if len(model_names) >= len(spec.names) else spec.names
    out = at_operating_point(preds, truths, names, background=(ITEM,), worst=worst)
    for miss in out["worst_misses"]:
        picture = records[miss["image"]].path
        root = spec.root or picture.parent
        miss["picture"] = str(picture.relative_to(root) if picture.is_relative_to(root) else picture)
    drawn = write_misses_sheet(out["worst_misses"], [r.path for r in records], names, sheet)
    if drawn is None:
        sheet.unlink(missing_ok=True)
    out["contact_sheet"] = sheet.name if drawn else None
    out["confidence"] = conf
    out["thresholds"] = dict(points.thresholds) if points else None
    out["definitions"] = OPERATING_DEFINITIONS
    return out


def tiled_map(
    weights: Path, spec: DatasetSpec, split: str, *, version: str, imgsz: int, threads: int, tiling: Tiling
) -> dict[str, Any]:
    """mAP50 of the station's tiled detector over the split: every candidate box (confidence 0.001), served NMS."""
    from inspector.detect import load_detector

    cfg = DetectorConfig(confidence=0.001, imgsz=imgsz, threads=threads, tiling=tiling)
    detector = TilingDetector.from_config(load_detector(cfg, weights, version), cfg)
    got = map50(*_detect_split(detector, spec.split(split)))
    names = detector.class_names
    return {
        "tiling": tiling,
        "tile": list(detector.tile),
        "overlap": detector.overlap,
        "nms_iou": cfg.iou,
        "map50": got["map50"],
        "per_class_ap50": {(names[c] if c < len(names) else str(c)): v["ap50"] for c, v in got["per_class"].items()},
    }


def _detect_split(detector: Detector, records: Sequence[ImageRecord]) -> tuple[list[Detections], list[Truth]]:
    """The detector's boxes and the true boxes of each picture, both in pixels."""
    from inspector.imageio import read_image
    from inspector.types import Frame

    preds: list[Detections] = []
    truths: list[Truth] = []
    for r in records:
        image = read_image(r.path)
        h, w = image.shape[:2]
        preds.append(detector.detect([Frame(image=image, camera_id="eval")])[0])
        truths.append(Truth(np.asarray(r.boxes, np.float64).reshape(-1, 4) * [w, h, w, h], r.class_ids))
    return preds, truths


def evaluation_text(version: str, key: str, ev: dict[str, Any]) -> str:
    """What ``inspector evaluate`` prints: the same Markdown the card holds for this evaluation."""
    return f"## Evaluation: {key} ({version})\n\n{render_evaluation(ev)}\n"


def read_yolo_labels(path: Path, width: int, height: int) -> Truth:
    """A YOLO label file (``class cx cy w h``, normalised) as pixel boxes; a missing file is an empty image."""
    return Truth(*label_boxes(parse_labels(path), width, height))


def evaluate_split(
    detect: Callable[[Path], Detections], images: Sequence[Path], label_of: Callable[[Path], Path]
) -> dict[str, Any]:
    """mAP50 (:func:`inspector.metrics.map50`) of ``detect`` (an image file -> its detections) over labelled images."""
    preds: list[Detections] = []
    truths: list[Truth] = []
    for path in images:
        det = detect(path)
        preds.append(det)
        truths.append(_truth_for(path, label_of(path)))
    return map50(preds, truths)


def _truth_for(image: Path, label: Path) -> Truth:
    from PIL import Image

    with Image.open(image) as im:  # the header gives the size the labels are normalised to
        w, h = im.size
    return read_yolo_labels(label, w, h)
