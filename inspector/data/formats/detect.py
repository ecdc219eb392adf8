"""Which format and layout a downloaded dataset is in, from its files alone.

Why: people import what an export tool or a download gave them (a Roboflow zip, a COCO 2017
tree, a VOC devkit, a CVAT or Label Studio export) and should not have to move a file or name
the format. Every format that matches is collected; when two do, the folder is ambiguous and
the error names both instead of picking one silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("yolo", "coco", "voc", "labelstudio", "cvat")
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")
ROBOFLOW_COCO = "_annotations.coco.json"
_COCO_HEAD = re.compile(r'"(images|annotations|categories)"\s*:\s*\[')
_VOC_HEAD = re.compile(r"<annotation[\s>]")
_CVAT_HEAD = re.compile(r"<annotations[\s>]")


@dataclass(frozen=True)
class Layout:
    """A detected dataset: its format, the layout's name, what was seen, and the folder to read."""

    format: str
    layout: str
    seen: str
    root: Path

    def describe(self) -> str:
        return f"{self.format} ({self.layout}: {self.seen})"


def _head(p: Path, n: int = 4096) -> str:
    try:
        with p.open("r", encoding="utf-8", errors="replace") as f:
            return f.read(n)
    except OSError:
        return ""


def looks_coco(p: Path) -> bool:
    """A JSON object with an ``images``, ``annotations`` or ``categories`` list near its start."""
    head = _head(p)
    return head.lstrip().startswith("{") and bool(_COCO_HEAD.search(head))


def looks_labelstudio(p: Path) -> bool:
    return _head(p, 64).lstrip().startswith("[")


def looks_cvat(p: Path) -> bool:
    return bool(_CVAT_HEAD.search(_head(p, 2048)))


def looks_voc(p: Path) -> bool:
    return bool(_VOC_HEAD.search(_head(p, 2048))) and not looks_cvat(p)


def _rel(root: Path, paths: list[Path]) -> str:
    names = [p.relative_to(root).as_posix() for p in paths[:3]]
    return ", ".join(names) + (f" (+{len(paths) - 3})" if len(paths) > 3 else "")


def _yolo(root: Path) -> Layout | None:
    found = [root / n for n in YAML_NAMES if (root / n).is_file()]
    if not found:
        return None
    text = _head(found[0], 65536)
    if re.search(r"^\s*(train|val|test)\s*:\s*['\"]?\.\./", text, re.M) or (root / "train" / "images").is_dir():
        layout = "roboflow"
    elif re.search(r"^path\s*:", text, re.M) or (root / "images" / "train").is_dir():
        layout = "ultralytics"
    else:
        layout = "plain"
    return Layout("yolo", layout, found[0].name, root)


def _coco(root: Path) -> Layout | None:
    rf = sorted(d / ROBOFLOW_COCO for d in root.iterdir() if d.is_dir() and (d / ROBOFLOW_COCO).is_file())
    if (root / ROBOFLOW_COCO).is_file():
        rf.insert(0, root / ROBOFLOW_COCO)
    if rf:
        return Layout("coco", "roboflow", _rel(root, rf), root)
    ann = sorted(p for p in (root / "annotations").glob("*.json") if looks_coco(p))
    if ann:
        return Layout("coco", "coco2017", _rel(root, ann), root)
    flat = sorted(p for p in root.glob("*.json") if looks_coco(p))
    if flat:
        return Layout("coco", "json", _rel(root, flat), root)
    return None


def _labelstudio(root: Path) -> Layout | None:
    found = sorted(p for p in root.glob("*.json") if looks_labelstudio(p))
    return Layout("labelstudio", "json export", _rel(root, found), root) if found else None


def _voc(root: Path) -> Layout | None:
    for name in ("Annotations", "annotations"):
        xmls = sorted((root / name).glob("*.xml"))
        if xmls and any(looks_voc(p) for p in xmls[:3]):
            sets = root / "ImageSets" / "Main"
            if sets.is_dir():
                return Layout("voc", "ImageSets/Main", f"{name}/, ImageSets/Main/", root)
            lists = [s for s in ("train.txt", "val.txt", "test.txt", "trainval.txt") if (root / s).is_file()]
            seen = f"{name}/" + (f", {', '.join(lists)}" if lists else "")
            return Layout("voc", "split lists" if lists else "flat", seen, root)
    xmls = sorted(p for p in root.glob("*.xml") if looks_voc(p))
    return Layout("voc", "flat", _rel(root, xmls), root) if xmls else None


def _cvat(root: Path) -> Layout | None:
    found = sorted(p for p in root.glob("*.xml") if looks_cvat(p))
    return Layout("cvat", "images 1.1", _rel(root, found), root) if found else None


DETECTORS = (_yolo, _coco, _voc, _labelstudio, _cvat)


def _file_layout(path: Path) -> Layout:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return Layout("yolo", "plain", path.name, path)
    if suffix == ".json":
        fmt = "labelstudio" if looks_labelstudio(path) else "coco"
        return Layout(fmt, "json", path.name, path)
    if suffix == ".xml" and looks_cvat(path):
        return Layout("cvat", "images 1.1", path.name, path)
    raise ValueError(f"{path}: cannot tell the dataset format of this file; give --format")


def _found(folder: Path) -> list[Layout]:
    return [lay for lay in (d(folder) for d in DETECTORS) if lay is not None]


def detect_layout(path: Path) -> Layout:
    """The one format and layout ``path`` holds; a single wrapping folder (a zip's, VOCdevkit/VOC2007) is entered."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        return _file_layout(path)
    found = _found(path)
    if not found:
        subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))]
        if len(subdirs) == 1:
            found = _found(subdirs[0])
    if len(found) > 1:
        saw = "; ".join(lay.describe() for lay in found)
        raise ValueError(
            f"{path}: more than one dataset format here: {saw}; give --format "
            + " or --format ".join(lay.format for lay in found)
        )
    if found:
        return found[0]
    raise ValueError(f"{path}: cannot tell the dataset format; give --format ({', '.join(FORMATS)})")
