"""Pascal VOC: one XML per image, images in JPEGImages/, splits in ImageSets/Main/<split>.txt.

Also reads the flat variant many datasets ship (``annotations/``, ``images/``,
``train.txt`` ... at the root, as NEU-DET does). VOC coordinates are 1-based
inclusive pixel indices: a box covering pixels 1..W is read as 0..W, and written
back the same way, so a round trip is exact. Fractional coordinates are kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from inspector.data.formats.spec import (
    IMAGE_SUFFIXES,
    SPLITS,
    DatasetSpec,
    ImageRecord,
    Problem,
    check_out_dir,
    fmt_num,
    image_size,
    list_images,
    pixel_record,
    place_image,
    unique_names,
)


def _dirs(root: Path) -> tuple[Path, Path]:
    ann = next((d for d in (root / "Annotations", root / "annotations") if d.is_dir()), None)
    if ann is None:
        if any(root.glob("*.xml")):
            ann = root
        else:
            raise FileNotFoundError(f"{root}: no Annotations/ (or annotations/) folder of VOC XML files")
    img = next((d for d in (root / "JPEGImages", root / "images", root / "Images") if d.is_dir()), root)
    return ann, img


def _split_lists(root: Path) -> dict[str, str]:
    """Image stem -> split, from ImageSets/Main/<split>.txt or <split>.txt at the root.

    ``trainval.txt`` is train and val together: it only places stems the others do not.
    """
    out: dict[str, str] = {}
    for base in (root / "ImageSets" / "Main", root):
        for split, fname in (
            ("train", "train.txt"),
            ("val", "val.txt"),
            ("test", "test.txt"),
            ("train", "trainval.txt"),
        ):
            f = base / fname
            if f.is_file():
                for ln in f.read_text(encoding="utf-8").splitlines():
                    stem = ln.strip().split()[0] if ln.strip() else ""
                    if stem:
                        out.setdefault(Path(stem).stem, split)
        if out:
            break
    return out


def _find_image(img_dir: Path, filename: str | None, stem: str) -> Path:
    if filename:
        p = img_dir / filename
        if p.exists():
            return p
    for suf in IMAGE_SUFFIXES:
        p = img_dir / f"{stem}{suf}"
        if p.exists():
            return p
    return img_dir / (filename or f"{stem}.jpg")


def read_voc(path: Path, names: tuple[str, ...] | None = None) -> DatasetSpec:
    """Read a VOC dataset folder; classes are ``names``, a labels.txt/classes.txt, or those found (sorted)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    ann_dir, img_dir = _dirs(root)
    splits = _split_lists(root)
    problems: list[Problem] = []
    if names is None:
        for f in (root / "labels.txt", root / "classes.txt"):
            if f.is_file():
                names = tuple(ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip())
                break
    parsed: list[tuple[Path, Path, int, int, list[str], list[list[float]]]] = []
    found: set[str] = set()
    for xf in sorted(ann_dir.glob("*.xml")):
        try:
            tree = ET.parse(xf)  # noqa: S314 - local dataset files, not untrusted uploads
        except ET.ParseError as exc:
            problems.append(Problem("malformed_label", str(xf), f"not valid XML ({exc})"))
            continue
        a = tree.getroot()
        filename = (a.findtext("filename") or "").strip() or None
        img = _find_image(img_dir, filename, xf.stem)
        w = int(float(a.findtext("size/width") or 0))
        h = int(float(a.findtext("size/height") or 0))
        if (w <= 0 or h <= 0) and img.exists():
            w, h = image_size(img) or (0, 0)
        objs, boxes = [], []
        for o in a.findall("object"):
            nm = (o.findtext("name") or "").strip()
            bb = o.find("bndbox")
            try:
                if bb is None:
                    raise ValueError
                x0, y0, x1, y1 = (float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
                if any(np.isnan([x0, y0, x1, y1])):
                    raise ValueError
            except ValueError:
                problems.append(Problem("malformed_label", str(xf), f"object {nm!r} has no readable bndbox"))
                continue
            objs.append(nm)
            boxes.append([x0 - 1.0, y0 - 1.0, x1, y1])  # 1-based inclusive -> continuous
            found.add(nm)
        parsed.append((xf, img, w, h, objs, boxes))
    if names is None:
        names = tuple(sorted(found))
    records: list[ImageRecord] = []
    covered: set[Path] = set()
    for xf, img, w, h, objs, boxes in parsed:
        ids = [names.index(n) if n in names else -1 for n in objs]
        for n in {n for n in objs if n not in names}:
            problems.append(Problem("unknown_class", str(xf), f"class {n!r} is not among {', '.join(names)}"))
        if not img.exists():
            problems.append(Problem("missing_image", str(img), f"{xf.name}: image file not found"))
        rec = pixel_record(img, w, h, splits.get(xf.stem, ""), boxes, ids, problems)
        rec.meta["label"] = str(xf)
        records.append(rec)
        covered.add(img.resolve() if img.exists() else img)
    if img_dir != root or ann_dir != root:
        for p in list_images(img_dir, recursive=False) if img_dir.is_dir() else []:
            if p.resolve() not in covered:
                problems.append(Problem("missing_label", str(p), "image has no annotation XML", "warning"))
    if splits:
        listed = {Path(r.meta["label"]).stem for r in records}
        for stem in sorted(set(splits) - listed):
            problems.append(Problem("missing_label", stem, f"listed in the {splits[stem]} split but has no annotation"))
    return DatasetSpec(names=names, images=records, root=root, source_format="voc", problems=problems)


def write_voc(spec: DatasetSpec, out: Path, link: str = "symlink") -> Path:
    """Write Annotations/, JPEGImages/, ImageSets/Main/<split>.txt and labels.txt."""
    spec.check_writable()
    out = Path(out)
    check_out_dir(out)
    names = unique_names(spec.images)
    stems: dict[str, list[str]] = {s: [] for s in SPLITS}
    used: set[str] = set()
    for rec, given in zip(spec.images, names, strict=True):
        stem, name = Path(given).stem, given
        if stem in used:  # VOC keys everything by stem, across splits
            stem = f"{stem}_{rec.split or 'train'}"
            name = stem + Path(given).suffix
        used.add(stem)
        place_image(rec.path, out / "JPEGImages" / name, link)
        (out / "Annotations").mkdir(parents=True, exist_ok=True)
        (out / "Annotations" / f"{stem}.xml").write_text(_xml(rec, name, spec.names), encoding="utf-8")
        stems[rec.split or "train"].append(stem)
    main = out / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split, lst in stems.items():
        if lst:
            (main / f"{split}.txt").write_text("\n".join(lst) + "\n", encoding="utf-8")
    (out / "labels.txt").write_text("\n".join(spec.names) + "\n", encoding="utf-8")
    return out


def _xml(rec: ImageRecord, filename: str, names: tuple[str, ...]) -> str:
    a = ET.Element("annotation")
    ET.SubElement(a, "folder").text = "JPEGImages"
    ET.SubElement(a, "filename").text = filename
    size = ET.SubElement(a, "size")
    ET.SubElement(size, "width").text = str(rec.width)
    ET.SubElement(size, "height").text = str(rec.height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(a, "segmented").text = "0"
    for (x0, y0, x1, y1), c in zip(rec.pixel_boxes, rec.class_ids, strict=True):
        o = ET.SubElement(a, "object")
        ET.SubElement(o, "name").text = names[int(c)]
        ET.SubElement(o, "pose").text = "Unspecified"
        ET.SubElement(o, "truncated").text = "0"
        ET.SubElement(o, "difficult").text = "0"
        bb = ET.SubElement(o, "bndbox")
        for k, v in (("xmin", x0 + 1.0), ("ymin", y0 + 1.0), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(bb, k).text = fmt_num(float(v))
    ET.indent(a)
    return ET.tostring(a, encoding="unicode") + "\n"
