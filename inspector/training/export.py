"""``inspector models export``: ONNX (and OpenVINO where installed) with a parity check.

The exported file sits in the version folder next to ``weights.pt``. Parity runs the
PyTorch weights and the export on the same images through the same pre- and post-
processing; the figures are printed, stored in ``meta.json`` and written into the card.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from inspector import registry, runtime
from inspector.data.formats import read_data_yaml
from inspector.detect.base import DetectorError
from inspector.training.card import render_card, render_parity
from inspector.training.parity import compare

FORMATS = ("onnx", "openvino")
RAW_SCORE_TOLERANCE = 1e-3  # FP32 graph vs PyTorch: differences come from operator order only


def parity_images(meta: dict[str, Any], n: int) -> list[Path]:
    """Images to compare on: the primary evaluation's split, else the training data's val split."""
    candidates: list[tuple[str, str]] = []
    evals = meta.get("evaluations") or {}
    primary = evals.get(meta.get("primary_evaluation") or "")
    if primary:
        candidates.append((primary["dataset"]["data_yaml"], str(primary.get("split", "test"))))
    ds = meta.get("dataset") or {}
    if ds.get("data_yaml"):
        candidates += [(ds["data_yaml"], "val"), (ds["data_yaml"], "test"), (ds["data_yaml"], "train")]
    for data_yaml, split in candidates:
        try:
            spec = read_data_yaml(Path(data_yaml))
            found = spec.image_paths(split)
        except (OSError, ValueError):
            continue
        if found:
            return found[:n]
    raise ValueError("no images to check parity on: pass --images DIR (the version's datasets are not on this disk)")


def _images_in(folder: Path, n: int) -> list[Path]:
    from inspector.data.formats import list_images

    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    found = list_images(folder)[:n]
    if not found:
        raise ValueError(f"no images in {folder}")
    return found


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_version(
    version: str,
    fmt: str = "onnx",
    *,
    root: Path | None = None,
    images_dir: Path | None = None,
    n_images: int = 50,
    threads: int | None = None,
) -> dict[str, Any]:
    """Export a registered version, check parity against PyTorch, record both in the registry."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: choose {', '.join(FORMATS)}")
    base = registry.root_dir(root)
    weights = registry.check_version(version, base)
    meta = registry.load_meta(version, base)
    imgsz = int(meta.get("imgsz", 640))
    conf = float(meta.get("operating_confidence", 0.25))
    paths = _images_in(images_dir, n_images) if images_dir else parity_images(meta, n_images)
    n_threads = runtime.configure(threads)

    from inspector.imageio import read_image
    from inspector.training import ultralytics

    if fmt == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError as exc:
            raise DetectorError("OpenVINO export needs the 'openvino' package (pip install openvino)") from exc
        artefact = ultralytics.export(weights, fmt="openvino", imgsz=imgsz, threads=n_threads)
    else:
        artefact = ultralytics.export_onnx(weights, imgsz=imgsz, threads=n_threads)
    vdir = registry.version_dir(version, base)
    if artefact.parent.resolve() != vdir.resolve():  # keep the export inside the version folder
        target = vdir / artefact.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(str(artefact), target)
        artefact = target

    arrays = [read_image(p) for p in paths]
    low = conf / 2
    ref = ultralytics.predict(weights, arrays, imgsz=imgsz, conf=low, threads=n_threads, square=True)
    out = ultralytics.predict(artefact, arrays, imgsz=imgsz, conf=low, threads=n_threads, square=True)
    parity = compare(ref, out, conf)
    if fmt in FORMATS:
        raw = ultralytics.raw_output_difference(weights, artefact, arrays, imgsz)
        parity["raw_max_diff"] = raw
        if parity["matched"] == 0 and parity["unmatched_reference"] == parity["unmatched_export"] == 0:
            # nothing confident to compare: the raw class scores decide
            parity["ok"] = raw["scores"] <= RAW_SCORE_TOLERANCE
        parity["tolerances"]["raw_scores"] = RAW_SCORE_TOLERANCE
    record = {
        "file": artefact.name,
        "bytes": _size(artefact),
        "sha256": registry.sha256_file(artefact) if artefact.is_file() else None,
        "imgsz": imgsz,
        "exported_at": registry.now_iso(),
        "parity": parity,
    }
    meta = registry.load_meta(version, base)
    meta.setdefault("exports", {})[fmt] = record
    registry.save_meta(version, meta, base)
    registry.save_card(version, render_card(meta), base)
    return record


def export_text(fmt: str, record: dict[str, Any]) -> str:
    """What ``inspector models export`` prints: the card's line for this export."""
    return render_parity(fmt, record)
