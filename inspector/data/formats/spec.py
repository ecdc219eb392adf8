"""One in-memory dataset that every format reads into and writes from.

Boxes are kept as normalised xyxy (0..1 of the image width and height), as read:
nothing is clipped or dropped on reading, so ``validate`` can report what is
wrong with a dataset instead of silently fixing it. Readers note what they could
not parse as :class:`Problem` rows; writers refuse records that would produce a
broken dataset.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SPLITS = ("train", "val", "test")
# Image files every reader, training aid and folder source recognises (compare with ``suffix.lower()``).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
LINK_MODES = ("symlink", "copy", "hardlink")


@dataclass(frozen=True)
class Problem:
    """Something wrong with a dataset, found while reading or validating it."""

    kind: str  # missing_image, missing_label, out_of_range, degenerate_box, unknown_class, ...
    path: str
    message: str
    severity: str = "error"  # or "warning"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "severity": self.severity, "path": self.path, "message": self.message}


@dataclass
class ImageRecord:
    """One image and its boxes (normalised xyxy) with class ids into the dataset's names."""

    path: Path
    width: int
    height: int
    split: str = ""
    boxes: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4), np.float64))
    class_ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0,), np.int64))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        self.class_ids = np.asarray(self.class_ids, np.int64).reshape(-1)
        if len(self.boxes) != len(self.class_ids):
            raise ValueError(f"{self.path}: {len(self.boxes)} boxes but {len(self.class_ids)} class ids")
        if self.split and self.split not in SPLITS:
            raise ValueError(f"{self.path}: unknown split {self.split!r}; expected one of {', '.join(SPLITS)}")

    @property
    def pixel_boxes(self) -> npt.NDArray[np.float64]:
        """Boxes in pixels (xyxy)."""
        return self.boxes * np.array([self.width, self.height, self.width, self.height], np.float64)

    def with_pixel_boxes(self, xyxy: npt.ArrayLike) -> None:
        px = np.asarray(xyxy, np.float64).reshape(-1, 4)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"{self.path}: cannot normalise boxes without the image size")
        self.boxes = px / np.array([self.width, self.height, self.width, self.height], np.float64)


@dataclass
class DatasetSpec:
    """Class names plus image records; ``problems`` holds what the reader could not make sense of.

    The converters and ``validate`` work on the records; training works on the image files of
    each split (:meth:`image_paths`) and hands the trainer ``data_yaml``, the YOLO description the
    dataset was read from (None for a dataset not read from one).
    """

    names: tuple[str, ...]
    images: list[ImageRecord]
    root: Path | None = None
    source_format: str = ""
    problems: list[Problem] = field(default_factory=list)
    data_yaml: Path | None = None
    layout: str = ""  # how the files were laid out, as detected ("roboflow", "coco2017", ...)

    @property
    def name(self) -> str:
        """The dataset's folder name, as model cards and evaluation keys show it."""
        folder = self.root or (self.data_yaml.parent if self.data_yaml else None)
        return folder.name if folder else ""

    def description(self) -> Path:
        """The data.yaml to hand a trainer: the one this dataset was read from."""
        if self.data_yaml is None:
            raise ValueError(f"{self.root or self.name}: not read from a YOLO data.yaml; write it as YOLO first")
        return self.data_yaml

    def split(self, name: str) -> list[ImageRecord]:
        return [r for r in self.images if (r.split or "train") == name]

    @property
    def splits(self) -> tuple[str, ...]:
        present = {r.split or "train" for r in self.images}
        return tuple(s for s in SPLITS if s in present)

    def image_paths(self, split: str) -> list[Path]:
        """The image files of ``split`` in listed order (a list may repeat an image on purpose)."""
        if split not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise ValueError(f"{self.data_yaml or self.root}: no {split!r} split (splits: {have})")
        return [r.path for r in self.split(split)]

    def check_writable(self) -> None:
        """Refuse to write boxes whose class is unknown: they would be silently relabelled."""
        for r in self.images:
            bad = (r.class_ids < 0) | (r.class_ids >= len(self.names))
            if bad.any():
                raise ValueError(
                    f"{r.path}: class id(s) {sorted(set(r.class_ids[bad].tolist()))} are not in the names "
                    f"({len(self.names)} classes); fix the names or the labels first (inspector data validate)"
                )


def pixel_record(
    path: Path, width: int, height: int, split: str, boxes: list[list[float]], ids: list[int], problems: list[Problem]
) -> ImageRecord:
    """A record from pixel xyxy boxes. Without the image size they cannot be normalised: dropped and noted."""
    arr: npt.NDArray[np.float64] = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(arr) and width > 0 and height > 0:
        arr = arr / np.array([width, height, width, height], np.float64)
    elif len(arr):
        problems.append(Problem("corrupt_image", str(path), "image size unknown: boxes cannot be normalised"))
        arr, ids = np.zeros((0, 4), np.float64), []
    return ImageRecord(
        path=path, width=width, height=height, split=split, boxes=arr, class_ids=np.asarray(ids, np.int64)
    )


def drop_missing(spec: DatasetSpec) -> int:
    """Leave out the records whose image file is absent, with their problems; returns how many went.

    Why: a downloaded set often lacks a few of the images its annotations list; an importer
    may choose to go on without them once they have been named.
    """
    gone = {str(r.path) for r in spec.images if not r.path.exists()}
    spec.images = [r for r in spec.images if str(r.path) not in gone]
    spec.problems = [p for p in spec.problems if not (p.kind == "missing_image" and p.path in gone)]
    return len(gone)


# ------------------------------------------------------------------------------ helpers


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """The image files in ``folder`` (and below it when ``recursive``), known by suffix in any case, sorted."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the image header, or None when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def place_image(src: Path, dst: Path, mode: str = "symlink") -> None:
    """Put an image into an output dataset by symlink, copy or hard link."""
    if mode not in LINK_MODES:
        raise ValueError(f"unknown link mode {mode!r}; expected one of {', '.join(LINK_MODES)}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    src = src.resolve()
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such image")
    if mode == "symlink":
        dst.symlink_to(src)
    elif mode == "hardlink":
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    else:
        shutil.copy2(src, dst)


def unique_names(records: list[ImageRecord]) -> list[str]:
    """An output file name per record: the image's own name, disambiguated within its split."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for r in records:
        split = r.split or "train"
        name = r.path.name
        key = (split, name.lower())
        if key in seen:
            seen[key] += 1
            name = f"{r.path.stem}_{seen[key]}{r.path.suffix}"
        else:
            seen[key] = 0
        out.append(name)
    return out


def check_out_dir(out: Path) -> None:
    """An output folder must be new or empty: never overwrite someone's dataset."""
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            raise ValueError(f"{out} is not empty; choose a new output folder")
    out.mkdir(parents=True, exist_ok=True)


def fmt_num(v: float) -> str:
    """A coordinate as short as possible without losing precision that matters (1e-9)."""
    if abs(v - round(v)) < 1e-9:
        return str(round(v))
    return f"{v:.9f}".rstrip("0").rstrip(".")


def names_from_arg(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Class names given on the command line (comma separated) or in a file (one per line or a labelmap)."""
    if names is None:
        return None
    if isinstance(names, (list, tuple)):
        return tuple(str(n) for n in names)
    p = Path(names)
    if p.is_file():
        if p.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(p.read_text(encoding="utf-8"))
            if isinstance(raw, dict) and "classes" in raw:
                from inspector.labelmap import load_labelmap

                return load_labelmap(p).names
            if isinstance(raw, dict) and "names" in raw:
                return tuple(_names_field(raw["names"], str(p)))
            raise ValueError(f"{p}: expected a labelmap (classes:) or a data.yaml (names:)")
        return tuple(ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip())
    out = tuple(n.strip() for n in str(names).split(",") if n.strip())
    if not out:
        raise ValueError("no class names given")
    return out


def _names_field(raw: Any, where: str) -> list[str]:
    if isinstance(raw, dict):
        try:
            keys = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: names must map integer ids to names") from None
        if keys != list(range(len(keys))):
            raise ValueError(f"{where}: class ids in names must run 0..{len(keys) - 1}")
        return [str(raw[k] if k in raw else raw[str(k)]) for k in keys]
    if isinstance(raw, list):
        return [str(n) for n in raw]
    raise ValueError(f"{where}: names must be a list or a mapping")
