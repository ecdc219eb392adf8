"""COCO detection JSON: one ``instances_<split>.json`` per split under ``annotations/``.

Boxes are ``[x, y, width, height]`` in pixels; category ids need not be
contiguous (they are mapped to 0..n-1 in id order). ``file_name`` is resolved
against the usual places: next to the JSON, an ``images/`` folder, the dataset root.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inspector.data.formats.spec import (
    SPLITS,
    DatasetSpec,
    ImageRecord,
    Problem,
    check_out_dir,
    image_size,
    place_image,
    unique_names,
)


def _split_from_name(stem: str) -> str:
    s = stem.lower()
    if "trainval" in s:
        return "train"
    for split in SPLITS:
        if s.endswith(split) or s.startswith(split) or f"_{split}" in s:
            return split
    if "valid" in s:
        return "val"
    return ""


def coco_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    for d in (path / "annotations", path):
        files = sorted(p for p in d.glob("*.json") if _looks_coco(p))
        if files:
            return files
    raise FileNotFoundError(f"{path}: no COCO JSON here (expected annotations/instances_<split>.json)")


def _looks_coco(p: Path) -> bool:
    try:
        head = p.read_text(encoding="utf-8")[:4096]
    except OSError:
        return False
    return head.lstrip().startswith("{") and ('"images"' in head or '"categories"' in head)


def _resolve(file_name: str, json_path: Path, images_dir: Path | None) -> Path:
    fn = Path(file_name)
    if fn.is_absolute():
        return fn
    bases = [images_dir] if images_dir else []
    bases += [
        json_path.parent,
        json_path.parent.parent / "images",
        json_path.parent.parent,
        json_path.parent / "images",
    ]
    for b in bases:
        if b is not None and (b / fn).exists():
            return b / fn
    return (bases[0] or json_path.parent) / fn


def read_coco(path: Path, images_dir: Path | None = None, names: tuple[str, ...] | None = None) -> DatasetSpec:
    """Read one COCO JSON or every split JSON of a COCO export folder."""
    files = coco_files(path)
    problems: list[Problem] = []
    records: list[ImageRecord] = []
    all_names: tuple[str, ...] | None = names
    for jf in files:
        try:
            doc: dict[str, Any] = json.loads(jf.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{jf}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            raise ValueError(f"{jf}: not a COCO detection file (no 'images' list)")
        cats = sorted(doc.get("categories", []), key=lambda c: int(c["id"]))
        file_names = tuple(str(c["name"]) for c in cats)
        if all_names is None:
            all_names = file_names
        cat_to_id: dict[int, int] = {}
        for c in cats:
            nm = str(c["name"])
            cat_to_id[int(c["id"])] = all_names.index(nm) if nm in all_names else -1
            if nm not in all_names:
                problems.append(
                    Problem("unknown_class", str(jf), f"category {nm!r} is not among the dataset's classes")
                )
        split = _split_from_name(jf.stem)
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in doc.get("annotations", []):
            by_image.setdefault(int(a["image_id"]), []).append(a)
        known = {int(im["id"]) for im in doc["images"]}
        for iid in by_image:
            if iid not in known:
                problems.append(
                    Problem("missing_image", str(jf), f"annotations refer to image id {iid}, which is not listed")
                )
        for im in doc["images"]:
            p = _resolve(str(im["file_name"]), jf, images_dir)
            w, h = int(im.get("width") or 0), int(im.get("height") or 0)
            if (w <= 0 or h <= 0) and p.exists():
                w, h = image_size(p) or (0, 0)
            if not p.exists():
                problems.append(Problem("missing_image", str(p), f"{jf.name}: image file not found"))
            boxes, ids = [], []
            for a in by_image.get(int(im["id"]), []):
                bbox = a.get("bbox")
                if not isinstance(bbox, list) or len(bbox) != 4:
                    problems.append(
                        Problem("malformed_label", str(jf), f"annotation {a.get('id')} has no 4-number bbox")
                    )
                    continue
                x, y, bw, bh = (float(v) for v in bbox)
                boxes.append([x, y, x + bw, y + bh])
                cid = int(a.get("category_id", -1))
                ids.append(cat_to_id.get(cid, -1))
                if cid not in cat_to_id:
                    problems.append(
                        Problem("unknown_class", str(jf), f"annotation {a.get('id')}: category id {cid} is not defined")
                    )
            arr: npt.NDArray[np.float64] = np.asarray(boxes, np.float64).reshape(-1, 4)
            if len(arr) and w > 0 and h > 0:
                arr = arr / np.array([w, h, w, h], np.float64)
            elif len(arr):
                problems.append(Problem("corrupt_image", str(p), "image size unknown: boxes cannot be normalised"))
                arr, ids = np.zeros((0, 4), np.float64), []
            rec = ImageRecord(path=p, width=w, height=h, split=split, boxes=arr, class_ids=np.asarray(ids, np.int64))
            records.append(rec)
    return DatasetSpec(names=all_names or (), images=records, root=Path(path), source_format="coco", problems=problems)


def write_coco(spec: DatasetSpec, out: Path, link: str = "symlink") -> Path:
    """Write ``annotations/instances_<split>.json`` and place the images under ``images/<split>/``."""
    spec.check_writable()
    out = Path(out)
    check_out_dir(out)
    names = unique_names(spec.images)
    categories = [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(spec.names)]
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split in spec.splits or ("train",):
        images: list[dict[str, Any]] = []
        anns: list[dict[str, Any]] = []
        for idx, (rec, name) in enumerate(zip(spec.images, names, strict=True)):
            if (rec.split or "train") != split:
                continue
            place_image(rec.path, out / "images" / split / name, link)
            images.append({"id": idx + 1, "file_name": f"{split}/{name}", "width": rec.width, "height": rec.height})
            for (x0, y0, x1, y1), c in zip(rec.pixel_boxes, rec.class_ids, strict=True):
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": idx + 1,
                        "category_id": int(c) + 1,
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": (x1 - x0) * (y1 - y0),
                        "iscrowd": 0,
                        "segmentation": [],
                    }
                )
        doc = {
            "info": {"description": "exported by inspector"},
            "images": images,
            "annotations": anns,
            "categories": categories,
        }
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return out
