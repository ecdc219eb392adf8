"""CVAT for images 1.1 XML: one ``annotations.xml`` listing every image with its shapes.

``<image name= width= height= [subset=]>`` holds ``<box label= xtl= ytl= xbr= ybr= [rotation=]>``,
``<polygon points="x,y;x,y;...">``, ``<ellipse cx= cy= rx= ry=>`` and ``<mask left= top= width= height=>``;
each is read as the box around it (a rotated box too). Classes come from ``<meta><task|project>
<labels>`` in their order, then any label only the shapes name. Coordinates are continuous pixels
(0..width), so boxes need no shift. The image's ``subset`` (Train, Validation, Test) is its split.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from inspector.data.formats.detect import looks_cvat
from inspector.data.formats.spec import (
    DatasetSpec,
    Problem,
    check_out_dir,
    fmt_num,
    image_size,
    list_images,
    pixel_record,
    place_image,
)

SUBSET_NAMES = {"train": "Train", "val": "Validation", "test": "Test"}  # as CVAT names them
SUBSETS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_SHAPES = ("box", "polygon", "ellipse", "mask", "polyline", "points", "cuboid", "skeleton")


def _xml_file(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    if (path / "annotations.xml").is_file():
        return path / "annotations.xml"
    found = sorted(p for p in path.glob("*.xml") if looks_cvat(p))
    if not found:
        raise FileNotFoundError(f"{path}: no CVAT annotations.xml here")
    return found[0]


def _num(el: ET.Element, key: str) -> float:
    v = float(el.get(key, "nan"))
    if math.isnan(v):
        raise ValueError(key)
    return v


def shape_box(el: ET.Element) -> list[float]:
    """The xyxy pixel box around one CVAT shape; ValueError when it has no readable geometry."""
    if el.tag == "box":
        x0, y0, x1, y1 = (_num(el, k) for k in ("xtl", "ytl", "xbr", "ybr"))
        rot = float(el.get("rotation") or 0.0)
        if abs(rot) > 1e-9:  # rotated about its centre, clockwise in degrees
            cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
            a = math.radians(rot)
            ex = abs(hw * math.cos(a)) + abs(hh * math.sin(a))
            ey = abs(hw * math.sin(a)) + abs(hh * math.cos(a))
            return [cx - ex, cy - ey, cx + ex, cy + ey]
        return [x0, y0, x1, y1]
    if el.tag in ("polygon", "polyline", "points"):
        pts = [tuple(float(v) for v in p.split(",")) for p in (el.get("points") or "").split(";") if p.strip()]
        if not pts or any(len(p) != 2 for p in pts):
            raise ValueError("points")
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return [min(xs), min(ys), max(xs), max(ys)]
    if el.tag == "ellipse":
        cx, cy, rx, ry = (_num(el, k) for k in ("cx", "cy", "rx", "ry"))
        return [cx - rx, cy - ry, cx + rx, cy + ry]
    if el.tag == "mask":
        x, y, w, h = (_num(el, k) for k in ("left", "top", "width", "height"))
        return [x, y, x + w, y + h]
    raise ValueError(el.tag)


def _resolve(name: str, root: Path, subset: str, index: dict[str, list[Path]]) -> Path:
    """The image a CVAT ``name`` refers to: under the XML's folder, its ``images/`` (per subset) or by name."""
    rel = Path(name)
    if rel.is_absolute() and rel.is_file():
        return rel
    for base in (root, root / "images", root / "images" / subset, root / subset):
        if (base / rel).is_file():
            return base / rel
    hits = index.get(rel.name.lower(), [])
    return hits[0] if len(hits) == 1 else root / "images" / rel


def read_cvat(path: Path, images_dir: Path | None = None, names: tuple[str, ...] | None = None) -> DatasetSpec:
    """Read a CVAT for images 1.1 export (``annotations.xml`` or its folder)."""
    xf = _xml_file(path)
    try:
        tree = ET.parse(xf)  # noqa: S314 - local dataset files, not untrusted uploads
    except ET.ParseError as exc:
        raise ValueError(f"{xf}: not valid XML ({exc})") from None
    top = tree.getroot()
    if top.tag != "annotations":
        raise ValueError(f"{xf}: not a CVAT for images file (root element <{top.tag}>, expected <annotations>)")
    if top.find("track") is not None and top.find("image") is None:
        raise ValueError(f"{xf}: a CVAT for video file (tracks, no images); export the task as CVAT for images 1.1")
    root = images_dir or xf.parent
    meta = [str(lab.findtext("name") or "").strip() for lab in top.iterfind("meta/*/labels/label")]
    found = [n for n in dict.fromkeys(meta) if n]
    problems: list[Problem] = []
    index: dict[str, list[Path]] = {}
    for p in list_images(root):
        index.setdefault(p.name.lower(), []).append(p)
    raw: list[tuple[Path, int, int, str, list[str], list[list[float]]]] = []
    for im in top.iterfind("image"):
        subset = str(im.get("subset") or "")
        split = SUBSETS.get(subset.lower(), "")
        img = _resolve(str(im.get("name") or ""), root, subset, index)
        w, h = int(float(im.get("width") or 0)), int(float(im.get("height") or 0))
        if (w <= 0 or h <= 0) and img.exists():
            w, h = image_size(img) or (0, 0)
        objs: list[str] = []
        boxes: list[list[float]] = []
        for el in im:
            if el.tag not in _SHAPES:
                continue
            label = str(el.get("label") or "")
            try:
                boxes.append(shape_box(el))
            except ValueError:
                problems.append(
                    Problem("malformed_label", str(img), f"<{el.tag} label={label!r}> has no readable shape")
                )
                continue
            objs.append(label)
            if label not in found:
                found.append(label)
        raw.append((img, w, h, split, objs, boxes))
    names = names if names is not None else tuple(found)
    records = []
    for img, w, h, split, objs, boxes in raw:
        if not img.exists():
            problems.append(Problem("missing_image", str(img), f"{xf.name}: image file not found"))
        for n in sorted({n for n in objs if n not in names}):
            problems.append(Problem("unknown_class", str(img), f"class {n!r} is not among {', '.join(names)}"))
        ids = [names.index(n) if n in names else -1 for n in objs]
        records.append(pixel_record(img, w, h, split, boxes, ids, problems))
    return DatasetSpec(names=names, images=records, root=xf.parent, source_format="cvat", problems=problems)


def write_cvat(spec: DatasetSpec, out: Path, link: str = "symlink") -> Path:
    """Write ``annotations.xml`` with images under ``images/``, each image's split as its ``subset``.

    CVAT matches annotations to uploaded images by name, so names are made unique across splits.
    """
    spec.check_writable()
    out = Path(out)
    check_out_dir(out)
    top = ET.Element("annotations")
    ET.SubElement(top, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(top, "meta"), "task")
    ET.SubElement(task, "size").text = str(len(spec.images))
    labels = ET.SubElement(task, "labels")
    for n in spec.names:
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = n
        ET.SubElement(lab, "type").text = "any"
        ET.SubElement(lab, "attributes")
    used: set[str] = set()
    for i, rec in enumerate(spec.images):
        split = rec.split or "train"
        name = rec.path.name
        if name.lower() in used:
            name = f"{rec.path.stem}_{split}_{i}{rec.path.suffix}"
        used.add(name.lower())
        place_image(rec.path, out / "images" / name, link)
        el = ET.SubElement(
            top, "image", id=str(i), name=name, subset=SUBSET_NAMES[split], width=str(rec.width), height=str(rec.height)
        )
        for (x0, y0, x1, y1), c in zip(rec.pixel_boxes, rec.class_ids, strict=True):
            attrs = {"label": spec.names[int(c)], "source": "manual", "occluded": "0", "z_order": "0"}
            attrs |= {k: fmt_num(float(v)) for k, v in (("xtl", x0), ("ytl", y0), ("xbr", x1), ("ybr", y1))}
            ET.SubElement(el, "box", attrs)
    ET.indent(top)
    p = out / "annotations.xml"
    p.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode") + "\n", "utf-8")
    return p
