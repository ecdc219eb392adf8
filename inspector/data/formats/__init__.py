"""The dataset layer: one in-memory :class:`DatasetSpec` read from and written to YOLO, COCO, Pascal VOC and
Label Studio, plus what training needs of a YOLO dataset (its description, label paths, fingerprint, merging)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inspector.data.formats.coco import read_coco, write_coco
from inspector.data.formats.fingerprint import fingerprint
from inspector.data.formats.labelstudio import read_labelstudio, write_labelstudio
from inspector.data.formats.merge import merge_datasets
from inspector.data.formats.spec import IMAGE_SUFFIXES, DatasetSpec, ImageRecord, Problem, list_images
from inspector.data.formats.voc import read_voc, write_voc
from inspector.data.formats.yolo import label_path, read_data_yaml, read_labels, read_yolo, write_yolo

FORMATS = ("yolo", "coco", "voc", "labelstudio")

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "DatasetSpec",
    "ImageRecord",
    "Problem",
    "detect_format",
    "fingerprint",
    "label_path",
    "list_images",
    "merge_datasets",
    "read_data_yaml",
    "read_dataset",
    "read_labels",
    "remap",
    "write_dataset",
]


def detect_format(path: Path) -> str:
    """Guess a dataset's format from its files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return "yolo"
        if path.suffix == ".json":
            head = path.read_text(encoding="utf-8")[:2048].lstrip()
            return "labelstudio" if head.startswith("[") else "coco"
        raise ValueError(f"{path}: cannot tell the dataset format of this file; give --format")
    if any((path / n).is_file() for n in ("data.yaml", "data.yml", "dataset.yaml")):
        return "yolo"
    if (path / "Annotations").is_dir() or (
        (path / "annotations").is_dir() and any((path / "annotations").glob("*.xml"))
    ):
        return "voc"
    if (path / "annotations").is_dir() or any(path.glob("*.json")):
        jsons = sorted((path / "annotations").glob("*.json")) + sorted(path.glob("*.json"))
        if jsons:
            head = jsons[0].read_text(encoding="utf-8")[:2048].lstrip()
            return "labelstudio" if head.startswith("[") else "coco"
    if any(path.glob("*.xml")):
        return "voc"
    raise ValueError(f"{path}: cannot tell the dataset format; give --format ({', '.join(FORMATS)})")


def read_dataset(
    path: Path, fmt: str | None = None, names: tuple[str, ...] | None = None, images_dir: Path | None = None
) -> DatasetSpec:
    """Read any supported format (detected when ``fmt`` is None). ``names`` fixes the class list and order."""
    fmt = fmt or detect_format(path)
    if fmt == "yolo":
        spec = read_yolo(path)
        if names is not None:
            spec = remap(spec, names)
        return spec
    if fmt == "coco":
        return read_coco(path, images_dir=images_dir, names=names)
    if fmt == "voc":
        return read_voc(path, names=names)
    if fmt == "labelstudio":
        return read_labelstudio(path, images_dir=images_dir, names=names)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_dataset(spec: DatasetSpec, out: Path, fmt: str, link: str = "symlink") -> Path:
    """Write ``spec`` in ``fmt`` into a new folder; returns the main file or folder written."""
    if fmt == "yolo":
        return write_yolo(spec, out, link)
    if fmt == "coco":
        return write_coco(spec, out, link)
    if fmt == "voc":
        return write_voc(spec, out, link)
    if fmt == "labelstudio":
        return write_labelstudio(spec, out, link)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def remap(spec: DatasetSpec, names: tuple[str, ...]) -> DatasetSpec:
    """The same dataset with class ids renumbered to ``names`` (unknown classes become -1)."""
    table = [names.index(n) if n in names else -1 for n in spec.names]
    for r in spec.images:
        r.class_ids = np.asarray([table[c] if 0 <= c < len(table) else -1 for c in r.class_ids], np.int64)
    missing = [n for n in spec.names if n not in names]
    for n in missing:
        spec.problems.append(Problem("unknown_class", str(spec.root), f"class {n!r} is not among {', '.join(names)}"))
    spec.names = names
    return spec
