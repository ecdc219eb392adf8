"""YOLO datasets in the ultralytics layout: a data.yaml, images/<split>/, labels/<split>/*.txt.

A label line is ``class cx cy w h`` normalised to the image size. A split in
data.yaml may be a folder of images, a .txt list of image paths, or a list of
either; labels sit where ultralytics looks for them (``/images/`` -> ``/labels/``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inspector.data.formats.spec import (
    IMAGE_SUFFIXES,
    SPLITS,
    DatasetSpec,
    ImageRecord,
    Problem,
    _names_field,
    check_out_dir,
    image_size,
    place_image,
    unique_names,
)


def find_data_yaml(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no data.yaml here (is this a YOLO dataset?)")


def label_path(image: Path) -> Path:
    """Where ultralytics looks for an image's labels: the last /images/ becomes /labels/."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _images_of(entry: Any, root: Path, where: str, problems: list[Problem]) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    out: list[Path] = []
    for e in entries:
        p = Path(str(e))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file() and p.suffix == ".txt":
            for raw_line in p.read_text(encoding="utf-8").splitlines():
                ln = raw_line.strip()
                if ln:
                    q = Path(ln)
                    out.append(q if q.is_absolute() else (p.parent / q if ln.startswith(".") else root / q))
        else:
            problems.append(Problem("missing_image", str(p), f"{where}: split source {e!r} does not exist"))
    return out


def read_yolo(path: Path) -> DatasetSpec:
    """Read a YOLO dataset (the data.yaml or its folder)."""
    data_yaml = find_data_yaml(path)
    raw = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or "names" not in raw:
        raise ValueError(f"{data_yaml}: expected a mapping with 'names'")
    names = tuple(_names_field(raw["names"], str(data_yaml)))
    root = Path(str(raw.get("path") or data_yaml.parent))
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve() if (data_yaml.parent / root).exists() else data_yaml.parent
    problems: list[Problem] = []
    records: list[ImageRecord] = []
    seen: set[Path] = set()
    label_files: set[Path] = set()
    for split in SPLITS:
        if not raw.get(split):
            continue
        for img in _images_of(raw[split], root, f"{data_yaml.name}:{split}", problems):
            key = img.resolve() if img.exists() else img
            if key in seen:
                problems.append(Problem("duplicate_image", str(img), f"listed again in the {split} split"))
                continue
            seen.add(key)
            lp = label_path(img)
            label_files.add(lp.resolve() if lp.exists() else lp)
            records.append(_record(img, lp, split, len(names), problems))
    # label files whose image is gone
    if (root / "labels").is_dir():
        for lp in sorted((root / "labels").rglob("*.txt")):
            if lp.resolve() not in label_files:
                problems.append(Problem("missing_image", str(lp), "label file has no image"))
    return DatasetSpec(names=names, images=records, root=root, source_format="yolo", problems=problems)


def _record(img: Path, lp: Path, split: str, n_names: int, problems: list[Problem]) -> ImageRecord:
    size = image_size(img) if img.exists() else None
    w, h = size if size else (0, 0)
    if not img.exists():
        problems.append(Problem("missing_image", str(img), "image listed in the dataset does not exist"))
    boxes: list[list[float]] = []
    ids: list[int] = []
    if not lp.exists():
        problems.append(
            Problem("missing_label", str(img), f"no label file {lp.name} (read as an image with no objects)", "warning")
        )
    else:
        for n, line in enumerate(lp.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                cls = int(float(parts[0]))
                cx, cy, bw, bh = (float(v) for v in parts[1:5])
                if len(parts) != 5 or float(parts[0]) != cls:
                    raise ValueError
            except ValueError:
                problems.append(
                    Problem("malformed_label", f"{lp}:{n}", f"cannot read {line.strip()!r} as 'class cx cy w h'")
                )
                continue
            boxes.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
            ids.append(cls)
    return ImageRecord(
        path=img,
        width=w,
        height=h,
        split=split,
        boxes=np.asarray(boxes).reshape(-1, 4),
        class_ids=np.asarray(ids),
        meta={"label": str(lp)},
    )


def write_yolo(spec: DatasetSpec, out: Path, link: str = "symlink") -> Path:
    """Write a YOLO dataset (images placed by ``link``); returns its data.yaml."""
    spec.check_writable()
    out = Path(out)
    check_out_dir(out)
    names = unique_names(spec.images)
    for rec, name in zip(spec.images, names, strict=True):
        split = rec.split or "train"
        place_image(rec.path, out / "images" / split / name, link)
        lp = out / "labels" / split / (Path(name).stem + ".txt")
        lp.parent.mkdir(parents=True, exist_ok=True)
        lp.write_text(label_text(rec), encoding="utf-8")
    return write_data_yaml(out, spec.names, spec.splits or ("train",))


def label_text(rec: ImageRecord) -> str:
    lines = []
    for (x0, y0, x1, y1), c in zip(rec.boxes, rec.class_ids, strict=True):
        lines.append(f"{int(c)} {(x0 + x1) / 2:.10f} {(y0 + y1) / 2:.10f} {x1 - x0:.10f} {y1 - y0:.10f}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_data_yaml(out: Path, names: tuple[str, ...], splits: tuple[str, ...], lists: bool = False) -> Path:
    """A data.yaml without ``path``: ultralytics then resolves splits against this file's folder."""
    lines = ["# Paths are relative to this file's folder."]
    for s in SPLITS:
        if s in splits:
            lines.append(f"{s}: {s}.txt" if lists else f"{s}: images/{s}")
    lines.append(f"nc: {len(names)}")
    lines.append("names:")
    lines += [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]  # a JSON string is a YAML string
    p = out / "data.yaml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p
