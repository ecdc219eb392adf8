"""The same model's mAP50 through each artefact, on a synthetic test set rendered with another seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector.bench.processes import run_part
from inspector.bench.subject import Subject


def run_map(backend: str, weights: Path, data_yaml: Path, imgsz: int, threads: int) -> dict[str, Any]:
    """mAP50 of one backend on the synthetic test split, through the backend's own ``detect`` (one metric path)."""
    from inspector import runtime

    runtime.configure(threads)
    from inspector.config import DetectorConfig
    from inspector.data.formats import label_path, read_data_yaml
    from inspector.detect import load_detector
    from inspector.imageio import read_image
    from inspector.training.artifacts import model_file
    from inspector.training.evaluate import evaluate_split
    from inspector.types import Frame

    # every candidate box, as a validator counts them; NMS at the validators' IoU
    cfg = DetectorConfig.model_validate(
        {"backend": backend, "imgsz": imgsz, "threads": threads, "confidence": 0.001, "iou": 0.7}
    )
    det = load_detector(cfg, model_file(cfg, weights))
    images = read_data_yaml(data_yaml).image_paths("test")
    metrics = evaluate_split(lambda p: det.detect([Frame(image=read_image(p))])[0], images, label_path)
    out: dict[str, Any] = {"map50": round(metrics["map50"], 4), "images": metrics["images"]}
    if backend == "ultralytics":  # the same weights through ultralytics' own validator, as a cross-check
        from inspector.training.ultralytics import validate

        val = validate(weights, data_yaml, split="test", imgsz=imgsz, iou=cfg.iou, plots=False, threads=threads)
        out["ultralytics_validator_map50"] = round(float(val["map50"]), 4)
    return out


def map_test_set(work: Path, images: int) -> Path:
    """The test set's ``data.yaml``, rendered once (seed 424242) and reused by later runs."""
    from inspector.data.synth import generate

    test_dir = work / "map-test"
    data_yaml = test_dir / "data.yaml"
    if data_yaml.is_file():
        return data_yaml
    # Most of the set lands in the test split; the generator keeps a little for training.
    return generate(test_dir, images, seed=424242, val=0.05, test=0.9, progress=False)


def measure(subject: Subject, backends: list[str], data_yaml: Path) -> dict[str, Any]:
    """:func:`run_map` for each of our backends (plain ultralytics runs the same weights), each in a child process."""
    out: dict[str, Any] = {}
    for backend in [b for b in backends if b != "plain-ultralytics"]:
        print(f"accuracy: {backend} ...", flush=True)
        args = ["--backend", backend, "--weights", str(subject.weights), "--data", str(data_yaml)]
        out[backend] = run_part(
            ["map", *args, "--imgsz", str(subject.imgsz), "--threads", str(subject.threads)], subject.threads
        )
    return out
