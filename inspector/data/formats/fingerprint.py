"""A content hash of a dataset, so a model version records exactly which data it was trained and evaluated on.

Every image and label file of every split is hashed: relabelling one box or swapping one
image changes the fingerprint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from inspector.data.formats.spec import DatasetSpec
from inspector.data.formats.yolo import label_path


def _count_boxes(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def fingerprint(spec: DatasetSpec, splits: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A content hash of the dataset (images and labels, per split and overall) with its counts."""
    total = hashlib.sha256()
    total.update("\n".join(spec.names).encode())
    per_split: dict[str, Any] = {}
    for split in splits or spec.splits:
        images = spec.image_paths(split)
        h = hashlib.sha256()
        n_labels = n_boxes = n_empty = 0
        for img in images:
            rel = img.relative_to(spec.root) if spec.root and img.is_relative_to(spec.root) else Path(img.name)
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
            "images": len(images),
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
