"""Checking a dataset before anyone trains on it: every fault found is reported, none is fixed.

Errors: missing or corrupt images, unreadable label lines, boxes outside the
image, boxes with no area, classes not in the names, image sizes that disagree
with the labels, the same picture in two splits. Warnings: images without a
label file (read as background), duplicates within a split, sub-pixel boxes.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspector.data.formats import DatasetSpec, Problem, read_dataset

TOLERANCE = 1e-6  # normalised; labels written with 6 decimals may overshoot 1.0 by rounding


@dataclass
class Report:
    dataset: str
    format: str
    names: tuple[str, ...]
    images: int
    boxes: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    def ok(self, strict: bool = False) -> bool:
        return not self.errors and not (strict and self.warnings)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "format": self.format,
            "classes": list(self.names),
            "images": self.images,
            "boxes": self.boxes,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts": self.counts(),
            "problems": [p.as_dict() for p in self.problems],
        }


def _check_image(path: Path) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """(content hash, (w, h), error message) of an image file."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, None, f"cannot read ({exc.strerror})"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    if not data:
        return digest, None, "empty file"
    try:
        import io

        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decodes everything: a truncated file fails here
            return digest, (int(im.size[0]), int(im.size[1])), None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return digest, None, f"not a readable image ({exc})"


def check(spec: DatasetSpec, check_images: bool = True) -> list[Problem]:
    """All problems of an in-memory dataset (the reader's own plus the checks here)."""
    problems = list(spec.problems)
    hashes: dict[str, list[tuple[Path, str]]] = defaultdict(list)
    n = len(spec.names)
    for rec in spec.images:
        where = str(rec.path)
        if check_images and rec.path.exists():
            digest, size, err = _check_image(rec.path)
            if err:
                problems.append(Problem("corrupt_image", where, err))
            elif size and rec.width and rec.height and size != (rec.width, rec.height):
                problems.append(
                    Problem(
                        "size_mismatch", where, f"labels say {rec.width}x{rec.height}, the image is {size[0]}x{size[1]}"
                    )
                )
            if digest:
                hashes[digest].append((rec.path, rec.split or "train"))
        b = rec.boxes
        for i, ((x0, y0, x1, y1), c) in enumerate(zip(b, rec.class_ids, strict=True)):
            tag = f"box {i}"
            if not np.all(np.isfinite([x0, y0, x1, y1])):
                problems.append(Problem("degenerate_box", where, f"{tag}: coordinates are not numbers"))
                continue
            if x1 <= x0 or y1 <= y0:
                problems.append(
                    Problem("degenerate_box", where, f"{tag}: no area (xyxy {x0:.4g} {y0:.4g} {x1:.4g} {y1:.4g})")
                )
            elif rec.width and rec.height and ((x1 - x0) * rec.width < 1 or (y1 - y0) * rec.height < 1):
                problems.append(Problem("tiny_box", where, f"{tag}: under one pixel wide or high", "warning"))
            if min(x0, y0) < -TOLERANCE or max(x1, y1) > 1 + TOLERANCE:
                problems.append(
                    Problem(
                        "out_of_range",
                        where,
                        f"{tag}: outside the image (normalised xyxy {x0:.4g} {y0:.4g} {x1:.4g} {y1:.4g})",
                    )
                )
            if c >= n or c < -1:
                problems.append(Problem("unknown_class", where, f"{tag}: class id {int(c)} but there are {n} classes"))
    for paths in hashes.values():
        if len(paths) < 2:
            continue
        splits = {s for _, s in paths}
        listed = ", ".join(str(p) for p, _ in paths[:4])
        if len(splits) > 1:
            problems.append(
                Problem("duplicate_image", listed, f"the same picture is in splits {', '.join(sorted(splits))}")
            )
        else:
            problems.append(
                Problem("duplicate_image", listed, f"the same picture appears {len(paths)} times", "warning")
            )
    return problems


def validate(
    path: Path,
    fmt: str | None = None,
    names: tuple[str, ...] | None = None,
    images_dir: Path | None = None,
    check_images: bool = True,
) -> Report:
    """Read and check a dataset in any supported format."""
    spec = read_dataset(Path(path), fmt, names=names, images_dir=images_dir)
    problems = check(spec, check_images)
    return Report(
        dataset=str(path),
        format=spec.source_format,
        names=spec.names,
        images=len(spec.images),
        boxes=sum(len(r.boxes) for r in spec.images),
        problems=problems,
    )
