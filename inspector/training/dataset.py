"""Reading a YOLO ``data.yaml`` the way ultralytics does, and fingerprinting the dataset.

The fingerprint hashes every image and label file of every split, so a model version
records exactly which data it was trained and evaluated on: relabelling one box or
swapping one image changes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
SPLITS = ("train", "val", "test")


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A parsed ``data.yaml``: root folder, class names, and the image files of each split."""

    data_yaml: Path
    root: Path
    names: tuple[str, ...]
    splits: dict[str, list[Path]]

    @property
    def name(self) -> str:
        return self.root.name

    def images(self, split: str) -> list[Path]:
        if split not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise ValueError(f"{self.data_yaml}: no {split!r} split (splits: {have})")
        return self.splits[split]


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` in the path becomes ``/labels/``, suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _names(raw: Any, where: Path) -> tuple[str, ...]:
    if isinstance(raw, dict):
        try:
            return tuple(str(raw[i]) for i in range(len(raw)))
        except KeyError as exc:
            raise ValueError(f"{where}: class ids in 'names' must be 0..n-1") from exc
    if isinstance(raw, list) and raw:
        return tuple(str(n) for n in raw)
    raise ValueError(f"{where}: 'names' must list the classes")


def _split_images(root: Path, entry: Any, where: Path) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    out: list[Path] = []
    for e in entries:
        p = Path(str(e))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()))
        elif p.is_file() and p.suffix == ".txt":
            for raw_line in p.read_text(encoding="utf-8").splitlines():
                line = raw_line.strip()
                if line:
                    q = Path(line)
                    out.append(q if q.is_absolute() else (root / q))
        else:
            raise ValueError(f"{where}: split path {p} does not exist")
    return out


def read_data_yaml(data_yaml: Path) -> DatasetSpec:
    """Parse a YOLO dataset description; a clear error for a missing file, split or class list."""
    if not data_yaml.is_file():
        raise FileNotFoundError(f"dataset description not found: {data_yaml}")
    try:
        raw = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{data_yaml}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{data_yaml}: expected a mapping with path, train, val and names")
    # a relative ``path`` is relative to the file's folder; no ``path`` means that folder itself
    folder = data_yaml.parent.absolute()
    root = folder / str(raw["path"]) if raw.get("path") else folder
    names = _names(raw.get("names"), data_yaml)
    splits = {s: _split_images(root, raw[s], data_yaml) for s in SPLITS if raw.get(s)}
    if "train" not in splits and "val" not in splits and "test" not in splits:
        raise ValueError(f"{data_yaml}: no train, val or test split")
    return DatasetSpec(data_yaml=data_yaml.absolute(), root=root, names=names, splits=splits)


def _count_boxes(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def fingerprint(spec: DatasetSpec, splits: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A content hash of the dataset (images and labels, per split and overall) with its counts."""
    total = hashlib.sha256()
    total.update("\n".join(spec.names).encode())
    per_split: dict[str, Any] = {}
    for split in splits or tuple(spec.splits):
        h = hashlib.sha256()
        n_labels = n_boxes = n_empty = 0
        for img in spec.images(split):
            rel = img.relative_to(spec.root) if img.is_relative_to(spec.root) else Path(img.name)
            h.update(str(rel).encode())
            h.update(hashlib.sha256(img.read_bytes()).digest())
            lbl = label_path(img)
            if lbl.is_file():
                data = lbl.read_bytes()
                n_labels += 1
                boxes = _count_boxes(data.decode("utf-8", errors="replace"))
                n_boxes += boxes
                n_empty += boxes == 0
                h.update(hashlib.sha256(data).digest())
            else:
                n_empty += 1
                h.update(b"-")
        digest = h.hexdigest()
        total.update(split.encode() + digest.encode())
        per_split[split] = {
            "images": len(spec.images(split)),
            "label_files": n_labels,
            "boxes": n_boxes,
            "images_without_boxes": n_empty,
            "sha256": digest,
        }
    return {
        "name": spec.name,
        "data_yaml": str(spec.data_yaml),
        "names": list(spec.names),
        "sha256": total.hexdigest(),
        "splits": per_split,
    }


def merge_datasets(specs: list[DatasetSpec], out_dir: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """One dataset from several, over the union of their class names (the first one's ids kept).

    Why: a pretraining run learns from the synthetic bench and from whatever labelled sets an
    engineer adds. A dataset whose ids already match the union is listed as it is; the others
    get their labels rewritten to the union's ids beside symlinks to their images, so no
    source file is touched. Only ``splits`` are merged: test splits stay out of training.
    """
    if not specs:
        raise ValueError("nothing to merge")
    names: list[str] = []
    for spec in specs:
        names += [n for n in spec.names if n not in names]
    out_dir = out_dir.absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged: dict[str, list[Path]] = {s: [] for s in splits}
    for k, spec in enumerate(specs):
        ids = [names.index(n) for n in spec.names]
        same = ids == list(range(len(ids)))
        for split in splits:
            for i, image in enumerate(spec.splits.get(split, [])):
                if same:
                    merged[split].append(image)
                    continue
                dst = out_dir / "images" / f"{k}" / split / f"{i:06d}_{image.name}"  # names may repeat
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.is_symlink() or dst.exists():
                    dst.unlink()
                dst.symlink_to(image.absolute())
                src_label = label_path(image)
                lines = []
                if src_label.is_file():
                    for line in src_label.read_text(encoding="utf-8").splitlines():
                        parts = line.split()
                        if parts:
                            lines.append(" ".join([str(ids[int(parts[0])]), *parts[1:]]))
                dst_label = label_path(dst)
                dst_label.parent.mkdir(parents=True, exist_ok=True)
                dst_label.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
                merged[split].append(dst)
    data: dict[str, object] = {"path": str(out_dir)}
    for split, images in merged.items():
        if not images:
            continue
        lst = out_dir / f"{split}.txt"
        lst.write_text("".join(f"{p.absolute()}\n" for p in images), encoding="utf-8")
        data[split] = str(lst)
    data["names"] = dict(enumerate(names))
    out = out_dir / "data.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out
