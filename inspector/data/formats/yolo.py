"""YOLO datasets in the ultralytics layout: a data.yaml, images/<split>/, labels/<split>/*.txt.

A label line is ``class cx cy w h`` normalised to the image size. A split in
data.yaml may be a folder of images, a .txt list of image paths, or a list of
either; labels sit where ultralytics looks for them (:func:`label_path`).
Two readers share these rules: :func:`read_yolo` reports what is wrong for
``validate`` and the converters; :func:`read_data_yaml` reads what the trainer
will be given, refusing a description it could not train on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from inspector.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from inspector.data.formats.spec import (
    SPLITS,
    DatasetSpec,
    ImageRecord,
    Problem,
    _names_field,
    check_out_dir,
    image_size,
    list_images,
    place_image,
    unique_names,
)
from inspector.yamlfile import read_mapping

LabelRow = tuple[int, float, float, float, float]  # class, cx, cy, w, h (normalised)


def find_data_yaml(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no data.yaml here (is this a YOLO dataset?)")


def label_path(image: Path) -> Path:
    """Where ultralytics looks for an image's labels, so every writer puts them where training finds them.

    The last folder named ``images`` in the path becomes ``labels`` and the suffix becomes ``.txt``;
    the file's own name never counts as that folder (``images.jpg`` is an image, not a folder), and
    an image under no ``images`` folder has its label beside it. A symlinked image keeps its own
    path here, so its label sits beside the link, not beside the target.
    """
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _row(parts: list[str]) -> LabelRow:
    """One label line: ``class cx cy w h``, or a segmentation line ``class x1 y1 x2 y2 x3 y3 ...`` read as its box.

    ultralytics trains a detector on segmentation labels the same way (the box around the polygon).
    """
    cls = int(float(parts[0]))
    if float(parts[0]) != cls:
        raise ValueError
    if len(parts) == 5:
        cx, cy, bw, bh = (float(v) for v in parts[1:5])
        return (cls, cx, cy, bw, bh)
    if len(parts) >= 7 and len(parts) % 2 == 1:
        xy = np.asarray([float(v) for v in parts[1:]], np.float64).reshape(-1, 2)
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        return (cls, float(x0 + x1) / 2, float(y0 + y1) / 2, float(x1 - x0), float(y1 - y0))
    raise ValueError


def parse_labels(label_file: Path, problems: list[Problem] | None = None) -> list[LabelRow]:
    """The ``class cx cy w h`` rows of a label file; a missing file has none (a background image).

    A polygon line (a class and three or more x y pairs) becomes the box around it. Any other
    line that is not five numbers with a whole class id is left out, as ultralytics would refuse
    it, and noted in ``problems`` when given.
    """
    if not label_file.is_file():
        return []
    rows: list[LabelRow] = []
    for n, line in enumerate(label_file.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            row = _row(parts)
        except ValueError:
            if problems is not None:
                problems.append(
                    Problem(
                        "malformed_label", f"{label_file}:{n}", f"cannot read {line.strip()!r} as 'class cx cy w h'"
                    )
                )
            continue
        rows.append(row)
    return rows


def read_labels(image: Path) -> list[LabelRow]:
    """The label rows of an image, from the file :func:`label_path` names."""
    return parse_labels(label_path(image))


def label_boxes(
    rows: list[LabelRow], width: float = 1.0, height: float = 1.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Label rows as xyxy boxes scaled to ``width`` x ``height`` (pixels; 1 x 1 keeps them normalised) and class ids."""
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return cxcywh_to_xyxy(arr[:, 1:5] * [width, height, width, height]), arr[:, 0].astype(np.int64)


def label_text(
    boxes: npt.ArrayLike, class_ids: npt.ArrayLike, decimals: int = 10, width: float = 1.0, height: float = 1.0
) -> str:
    """A label file's text from xyxy boxes (normalised, or in pixels of ``width`` x ``height``) and their class ids."""
    xywh = xyxy_to_cxcywh(np.asarray(boxes, np.float64).reshape(-1, 4)) / [width, height, width, height]
    lines = [
        f"{int(c)} {cx:.{decimals}f} {cy:.{decimals}f} {w:.{decimals}f} {h:.{decimals}f}"
        for (cx, cy, w, h), c in zip(xywh, np.asarray(class_ids).reshape(-1), strict=True)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def _root(data_yaml: Path, raw: dict[str, Any]) -> Path:
    """The folder the splits are relative to: ``path`` (relative to the file's folder), else that folder.

    Absolute but not resolved: images reached through a symlinked folder keep their paths. A
    ``path`` that does not exist here (written on another machine) falls back to the file's folder.
    """
    folder = data_yaml.parent.absolute()
    if not raw.get("path"):
        return folder
    root = Path(str(raw["path"]))
    if root.is_absolute():
        return root if root.exists() else folder
    return folder / root if (folder / root).exists() else folder


def load_data_yaml(path: Path) -> tuple[Path, dict[str, Any], tuple[str, ...], Path]:
    """The description file (given, or found in a folder), its mapping, class names and root."""
    data_yaml = find_data_yaml(path).absolute()
    raw = read_mapping(data_yaml, "expected a mapping with path, train, val and names")
    if not raw.get("names"):
        raise ValueError(f"{data_yaml}: 'names' must list the classes")
    return data_yaml, raw, tuple(_names_field(raw["names"], str(data_yaml))), _root(data_yaml, raw)


def split_path(entry: str, root: Path) -> Path:
    """A split entry of a data.yaml as a path, also as Roboflow writes it.

    Roboflow writes ``../train/images`` beside ``train/``: relative to the file's parent folder.
    As ultralytics does, a ``../`` entry that does not exist is tried without it; an absolute
    path from another machine (``/content/My-Set-1/valid/images``) is tried as its last two
    folders under the root.
    """
    p = Path(entry)
    full = p if p.is_absolute() else root / p
    if full.exists():
        return full
    cands = []
    if entry.startswith("../"):
        cands.append(root / entry[3:])
    if p.is_absolute() and len(p.parts) > 2:
        cands.append(root.joinpath(*p.parts[-2:]))
    return next((c for c in cands if c.exists()), full)


def _images_of(entry: Any, root: Path, where: str, problems: list[Problem]) -> list[Path]:
    """The images of one split entry: folders are searched, a .txt lists one image per line.

    A listed path starting with ``.`` is relative to the list file (as ultralytics reads it),
    any other relative path to the dataset root.
    """
    entries = entry if isinstance(entry, list) else [entry]
    out: list[Path] = []
    for e in entries:
        p = split_path(str(e), root)
        if p.is_dir():
            out += list_images(p)
        elif p.is_file() and p.suffix == ".txt":
            for raw_line in p.read_text(encoding="utf-8").splitlines():
                ln = raw_line.strip()
                if ln:
                    q = Path(ln)
                    out.append(q if q.is_absolute() else (p.parent / q if ln.startswith(".") else root / q))
        else:
            problems.append(Problem("missing_image", str(p), f"{where}: split path {p} does not exist"))
    return out


def _record(img: Path, split: str, problems: list[Problem], read_size: bool = True) -> ImageRecord:
    lp = label_path(img)
    w, h = 0, 0
    if read_size:
        size = image_size(img) if img.exists() else None
        w, h = size if size else (0, 0)
        if not img.exists():
            problems.append(Problem("missing_image", str(img), "image listed in the dataset does not exist"))
    if not lp.exists():
        problems.append(
            Problem("missing_label", str(img), f"no label file {lp.name} (read as an image with no objects)", "warning")
        )
    boxes, class_ids = label_boxes(parse_labels(lp, problems))
    return ImageRecord(
        path=img,
        width=w,
        height=h,
        split=split,
        boxes=boxes,
        class_ids=class_ids,
        meta={"label": str(lp)},
    )


def read_yolo(path: Path) -> DatasetSpec:
    """Read a YOLO dataset (the data.yaml or its folder) noting every fault as a problem."""
    data_yaml, raw, names, root = load_data_yaml(path)
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
            rec = _record(img, split, problems)
            lp = Path(rec.meta["label"])
            label_files.add(lp.resolve() if lp.exists() else lp)
            records.append(rec)
    # label files whose image is gone
    if (root / "labels").is_dir():
        for lp in sorted((root / "labels").rglob("*.txt")):
            if lp.resolve() not in label_files:
                problems.append(Problem("missing_image", str(lp), "label file has no image"))
    return DatasetSpec(
        names=names, images=records, root=root, source_format="yolo", problems=problems, data_yaml=data_yaml
    )


def read_data_yaml(path: Path) -> DatasetSpec:
    """Read the dataset a trainer is given: every listed image in order, repeats kept, sizes not read.

    A split path that does not exist, or no split at all, is an error here rather than a problem:
    training on part of what was asked for would go unnoticed. Label faults are noted in
    ``problems``; image width and height are left 0 (training does not need them).
    """
    data_yaml, raw, names, root = load_data_yaml(path)
    problems: list[Problem] = []
    records: list[ImageRecord] = []
    for split in SPLITS:
        if not raw.get(split):
            continue
        missing: list[Problem] = []
        images = _images_of(raw[split], root, str(data_yaml), missing)
        if missing:
            raise ValueError(missing[0].message)
        records += [_record(img, split, problems, read_size=False) for img in images]
    if not any(raw.get(s) for s in SPLITS):
        raise ValueError(f"{data_yaml}: no train, val or test split")
    return DatasetSpec(
        names=names, images=records, root=root, source_format="yolo", problems=problems, data_yaml=data_yaml
    )


def write_yolo(spec: DatasetSpec, out: Path, link: str = "symlink") -> Path:
    """Write a YOLO dataset (images placed by ``link``); returns its data.yaml."""
    spec.check_writable()
    out = Path(out)
    check_out_dir(out)
    names = unique_names(spec.images)
    for rec, name in zip(spec.images, names, strict=True):
        split = rec.split or "train"
        img = out / "images" / split / name
        place_image(rec.path, img, link)
        lp = label_path(img)
        lp.parent.mkdir(parents=True, exist_ok=True)
        lp.write_text(label_text(rec.boxes, rec.class_ids), encoding="utf-8")
    return write_data_yaml(out, spec.names, spec.splits or ("train",))


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


def write_list_yaml(out_dir: Path, names: tuple[str, ...], splits: dict[str, list[Path]]) -> Path:
    """A data.yaml over list files of absolute image paths, for a dataset derived from others.

    Absolute, not resolved: a symlinked image must keep its own path, where its label is found.
    """
    out_dir = out_dir.absolute()
    data: dict[str, object] = {"path": str(out_dir)}
    for split, images in splits.items():
        lst = out_dir / f"{split}.txt"
        lst.write_text("".join(f"{p.absolute()}\n" for p in images), encoding="utf-8")
        data[split] = str(lst)
    data["names"] = dict(enumerate(names))
    out = out_dir / "data.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out
