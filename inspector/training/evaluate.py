"""Measuring a model on a labelled split.

``inspector evaluate`` gives ultralytics' detection metrics of one version on one dataset
split. The result goes three places at once: ``eval-<dataset>-<split>.json`` in the version
folder, the version's ``meta.json``, and its model card (re-rendered from the meta), so
the card shows exactly the numbers the command printed.

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

from inspector import registry, runtime
from inspector.data.formats import fingerprint, read_data_yaml
from inspector.data.formats.yolo import label_boxes, parse_labels
from inspector.metrics import Truth, map50
from inspector.training.card import render_card, render_evaluation
from inspector.training.plots import write_plots
from inspector.training.run import DEFAULT_WORK_DIR
from inspector.types import Detections


def measure_latency(
    weights: Path, images: list[Path], *, imgsz: int, conf: float, threads: int, model_version: str
) -> dict[str, Any]:
    """Milliseconds per image through the station's own detector, one image at a time."""
    from inspector.config import DetectorConfig
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
) -> dict[str, Any]:
    """Evaluate a registered version, store the result in the registry, and return it."""
    base = registry.root_dir(root)
    weights = registry.check_version(version, base)
    meta = registry.load_meta(version, base)
    spec = read_data_yaml(data_yaml)
    images = spec.image_paths(split)
    if not images:
        raise ValueError(f"{data_yaml}: the {split!r} split has no images")
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
    vdir = registry.version_dir(version, base)
    registry.write_atomic(vdir / f"eval-{key}.json", json.dumps(ev, indent=2) + "\n")

    meta = registry.load_meta(version, base)  # re-read: another command may have changed it meanwhile
    meta.setdefault("evaluations", {})[key] = ev
    if primary or not meta.get("primary_evaluation"):
        meta["primary_evaluation"] = key
    registry.save_meta(version, meta, base)
    registry.save_card(version, render_card(meta), base)
    write_plots(version, base)
    return ev


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
