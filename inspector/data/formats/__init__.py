"""The dataset layer: one in-memory :class:`DatasetSpec` read from and written to YOLO, COCO, Pascal VOC,
Label Studio and CVAT, plus what training needs of a YOLO dataset (its description, label paths, fingerprint,
merging). The format and layout of a folder are detected (:func:`detect_layout`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inspector.data.formats.coco import read_coco, write_coco
from inspector.data.formats.cvat import read_cvat, write_cvat
from inspector.data.formats.detect import FORMATS, Layout, detect_layout
from inspector.data.formats.fingerprint import fingerprint
from inspector.data.formats.labelstudio import read_labelstudio, write_labelstudio
from inspector.data.formats.merge import merge_datasets
from inspector.data.formats.spec import (
    IMAGE_SUFFIXES,
    DatasetSpec,
    ImageRecord,
    Problem,
    drop_missing,
    list_images,
)
from inspector.data.formats.voc import read_voc, write_voc
from inspector.data.formats.yolo import label_path, read_data_yaml, read_labels, read_yolo, write_yolo

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "DatasetSpec",
    "ImageRecord",
    "Layout",
    "Problem",
    "detect_format",
    "detect_layout",
    "drop_missing",
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
    """Guess a dataset's format from its files (an ambiguous folder is an error naming what it saw)."""
    return detect_layout(path).format


def read_dataset(
    path: Path, fmt: str | None = None, names: tuple[str, ...] | None = None, images_dir: Path | None = None
) -> DatasetSpec:
    """Read any supported format (detected when ``fmt`` is None). ``names`` fixes the class list and order."""
    layout = ""
    if fmt is None:
        found = detect_layout(path)
        fmt, path, layout = found.format, found.root, found.describe()
    if fmt == "yolo":
        spec = read_yolo(path)
        if names is not None:
            spec = remap(spec, names)
    elif fmt == "coco":
        spec = read_coco(path, images_dir=images_dir, names=names)
    elif fmt == "voc":
        spec = read_voc(path, names=names)
    elif fmt == "labelstudio":
        spec = read_labelstudio(path, images_dir=images_dir, names=names)
    elif fmt == "cvat":
        spec = read_cvat(path, images_dir=images_dir, names=names)
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    spec.layout = layout or fmt
    return spec


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
    if fmt == "cvat":
        return write_cvat(spec, out, link)
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
