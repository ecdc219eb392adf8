"""COCO detection JSON: ``annotations/instances_<split>.json`` or ``<split>/_annotations.coco.json``.

The first is the COCO 2017 layout, the second Roboflow's export.
Boxes are ``[x, y, width, height]`` in pixels; category ids need not be
contiguous (they are mapped to 0..n-1 in id order). A missing or empty ``bbox``
is taken from the ``segmentation`` (polygons or RLE). ``file_name`` is resolved
against the usual places (beside the JSON, ``images/<split>/``, ``<split>2017/``,
the dataset root) and, failing those, by its name among the dataset's images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspector.data.formats.detect import ROBOFLOW_COCO, looks_coco
from inspector.data.formats.spec import (
    SPLITS,
    DatasetSpec,
    ImageRecord,
    Problem,
    check_out_dir,
    image_size,
    list_images,
    pixel_record,
    place_image,
    unique_names,
)


def _split_from_name(stem: str) -> str:
    """The split a file or folder name stands for: ``instances_val2017``, ``valid``, ``train`` ..."""
    s = stem.lower()
    if "trainval" in s:
        return "train"
    for split in SPLITS:
        if s.endswith(split) or s.startswith(split) or f"_{split}" in s:
            return split
    if "valid" in s:
        return "val"
    return ""


def coco_files(path: Path) -> list[tuple[Path, str]]:
    """Every COCO JSON of a dataset with its split.

    A Roboflow export has ``<split>/_annotations.coco.json`` (``valid`` is val); a COCO 2017
    tree has ``annotations/instances_<split>.json`` (captions and keypoints files beside them
    are left out when instances files exist); otherwise any COCO JSON in ``annotations/`` or the folder.
    """
    path = Path(path)
    if path.is_file():
        split = _split_from_name(path.parent.name) if path.name == ROBOFLOW_COCO else _split_from_name(path.stem)
        return [(path, split)]
    rf = [(d / ROBOFLOW_COCO, _split_from_name(d.name)) for d in sorted(path.iterdir())]
    rf = [(f, split) for f, split in rf if f.is_file()]
    if (path / ROBOFLOW_COCO).is_file():
        rf.insert(0, (path / ROBOFLOW_COCO, ""))
    if rf:
        return rf
    for d in (path / "annotations", path):
        files = sorted(p for p in d.glob("*.json") if looks_coco(p))
        instances = [p for p in files if p.stem.startswith("instances")]
        if files:
            return [(p, _split_from_name(p.stem)) for p in instances or files]
    raise FileNotFoundError(
        f"{path}: no COCO JSON here (expected annotations/instances_<split>.json or <split>/{ROBOFLOW_COCO})"
    )


class _Finder:
    """Where a ``file_name`` is: beside the JSON, under ``images/<split>/``, ``<split>2017/``, ... or by name.

    The last resort indexes every image under the dataset folder once and takes the one whose
    trailing path parts match ``file_name``, so sub-folders in names and flattened copies both resolve.
    """

    def __init__(self, root: Path, images_dir: Path | None) -> None:
        self.root = root
        self.images_dir = images_dir
        self._index: dict[str, list[Path]] | None = None

    def bases(self, jf: Path, split: str) -> list[Path]:
        tag = jf.stem.removeprefix("instances_").removeprefix("instances")
        tops = [jf.parent.parent, jf.parent] if jf.parent.name.lower() == "annotations" else [jf.parent]
        subs = [""] + [s for s in dict.fromkeys((tag, split, f"{split}2017" if split else "")) if s]
        out: list[Path] = [self.images_dir] if self.images_dir else []
        for top in [*tops, self.root]:
            for sub in subs:
                out += [top / sub, top / "images" / sub]
        return list(dict.fromkeys(out))

    def find(self, file_name: str, bases: list[Path]) -> Path:
        fn = Path(file_name)
        if fn.is_absolute():
            return fn
        for b in bases:
            if (b / fn).is_file():
                return b / fn
        if self._index is None:
            self._index = {}
            for p in list_images(self.root):
                self._index.setdefault(p.name.lower(), []).append(p)
        cands = self._index.get(fn.name.lower(), [])
        for k in range(len(fn.parts), 0, -1):
            tail = tuple(x.lower() for x in fn.parts[-k:])
            hits = [p for p in cands if tuple(x.lower() for x in p.parts[-k:]) == tail]
            if len(hits) == 1:
                return hits[0]
        return bases[0] / fn


def _placeholders(cats: list[dict[str, Any]], used: set[int]) -> set[int]:
    """Category ids that only name the others' supercategory (Roboflow's first category) and label nothing."""
    supers = {str(c.get("supercategory", "")) for c in cats}
    return {int(c["id"]) for c in cats if str(c["name"]) in supers and int(c["id"]) not in used and len(cats) > 1}


def _points_box(points: list[float]) -> list[float] | None:
    xs, ys = points[0::2], points[1::2]
    if not xs or not ys:
        return None
    return [min(xs), min(ys), max(xs), max(ys)]


def rle_counts(counts: str | list[int]) -> list[int]:
    """Run lengths of a COCO RLE: uncompressed (a list) or compressed (COCO's LEB128-like string)."""
    if isinstance(counts, list):
        return [int(c) for c in counts]
    out: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def rle_box(counts: list[int], height: int) -> list[float] | None:
    """The xyxy box around a column-major RLE mask of ``height`` rows (pixel edges, as COCO's bbox)."""
    x0 = y0 = float("inf")
    x1 = y1 = -1.0
    pos = 0
    for i, n in enumerate(counts):
        if i % 2 and n > 0:
            first, last = pos, pos + n - 1
            c0, c1 = first // height, last // height
            r0, r1 = (first % height, last % height) if c0 == c1 else (0, height - 1)
            x0, x1 = min(x0, c0), max(x1, c1 + 1)
            y0, y1 = min(y0, r0), max(y1, r1 + 1)
        pos += n
    return None if x1 < 0 else [x0, y0, x1, y1]


def segmentation_box(seg: Any) -> list[float] | None:
    """The xyxy box around a COCO ``segmentation``: polygons (lists of x, y) or an RLE mask."""
    if isinstance(seg, list) and seg:
        polys = seg if isinstance(seg[0], list) else [seg]
        pts = [float(v) for poly in polys for v in poly]
        return _points_box(pts)
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        return rle_box(rle_counts(seg["counts"]), int(seg["size"][0]))
    return None


def _annotation_box(a: dict[str, Any]) -> list[float] | None:
    """xyxy pixels from ``bbox``, or from ``segmentation`` when the bbox is missing, empty or without area."""
    bbox = a.get("bbox")
    seg_box = None
    if not (isinstance(bbox, list) and len(bbox) == 4 and float(bbox[2]) * float(bbox[3]) > 0):
        seg_box = segmentation_box(a.get("segmentation"))
    if seg_box is not None:
        return seg_box
    if isinstance(bbox, list) and len(bbox) == 4:
        x, y, bw, bh = (float(v) for v in bbox)
        return [x, y, x + bw, y + bh]
    return None


def _load(jf: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(jf.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{jf}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise ValueError(f"{jf}: not a COCO detection file (no 'images' list)")
    return doc


def read_coco(path: Path, images_dir: Path | None = None, names: tuple[str, ...] | None = None) -> DatasetSpec:
    """Read one COCO JSON or every split JSON of a COCO export folder (Roboflow or COCO 2017 layout).

    Classes are ``names`` or the union of the files' categories in id order, less a Roboflow
    placeholder category that only names the others' supercategory.
    """
    path = Path(path)
    files = coco_files(path)
    root = path if path.is_dir() else (path.parent.parent if path.parent.name.lower() == "annotations" else path.parent)
    docs = [(jf, split, _load(jf)) for jf, split in files]
    problems: list[Problem] = []
    records: list[ImageRecord] = []
    found: list[str] = []
    for _, _, doc in docs:
        used = {int(a.get("category_id", -1)) for a in doc.get("annotations", [])}
        cats = sorted(doc.get("categories", []), key=lambda c: int(c["id"]))
        skip = _placeholders(cats, used)
        for c in cats:
            if int(c["id"]) not in skip and str(c["name"]) not in found:
                found.append(str(c["name"]))
    all_names = names if names is not None else tuple(found)
    finder = _Finder(root, images_dir)
    for jf, split, doc in docs:
        cat_to_id: dict[int, int] = {}
        for c in doc.get("categories", []):
            nm = str(c["name"])
            cat_to_id[int(c["id"])] = all_names.index(nm) if nm in all_names else -1
            if nm not in all_names and nm in found:
                problems.append(
                    Problem("unknown_class", str(jf), f"category {nm!r} is not among the dataset's classes")
                )
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in doc.get("annotations", []):
            by_image.setdefault(int(a["image_id"]), []).append(a)
        known = {int(im["id"]) for im in doc["images"]}
        for iid in by_image:
            if iid not in known:
                problems.append(
                    Problem("unlisted_image", str(jf), f"annotations refer to image id {iid}, which is not listed")
                )
        bases = finder.bases(jf, split)
        for im in doc["images"]:
            p = finder.find(str(im["file_name"]), bases)
            w, h = int(im.get("width") or 0), int(im.get("height") or 0)
            if (w <= 0 or h <= 0) and p.exists():
                w, h = image_size(p) or (0, 0)
            if not p.exists():
                problems.append(Problem("missing_image", str(p), f"{jf.name}: image file not found"))
            boxes, ids = [], []
            for a in by_image.get(int(im["id"]), []):
                box = _annotation_box(a)
                if box is None:
                    problems.append(
                        Problem("malformed_label", str(jf), f"annotation {a.get('id')} has no bbox or segmentation")
                    )
                    continue
                boxes.append(box)
                cid = int(a.get("category_id", -1))
                ids.append(cat_to_id.get(cid, -1))
                if cid not in cat_to_id:
                    problems.append(
                        Problem("unknown_class", str(jf), f"annotation {a.get('id')}: category id {cid} is not defined")
                    )
            records.append(pixel_record(p, w, h, split, boxes, ids, problems))
    return DatasetSpec(names=all_names, images=records, root=path, source_format="coco", problems=problems)


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
