"""Train/val/test splits stratified by class, so rare defects land in every split."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import yaml

from inspector.data.formats import DatasetSpec, ImageRecord
from inspector.data.formats.yolo import load_data_yaml


def stratified_split(spec: DatasetSpec, val: float, test: float, seed: int) -> dict[str, int]:
    """Assign every record a split (in place); returns the images per split.

    Each image is keyed by the rarest class it holds (images with no boxes form
    their own group); every group is shuffled with ``seed`` and cut in the asked
    proportions, so each class is spread over the splits like the whole set.
    """
    if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
        raise ValueError(f"val ({val}) and test ({test}) must be fractions that leave room for training")
    freq = Counter(int(c) for r in spec.images for c in r.class_ids)
    groups: dict[int, list[ImageRecord]] = defaultdict(list)
    for r in sorted(spec.images, key=lambda r: str(r.path)):
        present = {int(c) for c in r.class_ids}
        key = min(present, key=lambda c: (freq[c], c)) if present else -1
        groups[key].append(r)
    rng = np.random.default_rng(seed)
    counts: Counter[str] = Counter()
    carry_val = carry_test = 0.0
    for key in sorted(groups):
        recs = groups[key]
        order = rng.permutation(len(recs))
        # carry the rounding over groups, so small groups do not all round to zero
        want_val = len(recs) * val + carry_val
        want_test = len(recs) * test + carry_test
        n_val, n_test = round(want_val), round(want_test)
        n_val = min(n_val, len(recs))
        n_test = min(n_test, len(recs) - n_val)
        carry_val, carry_test = want_val - n_val, want_test - n_test
        for rank, i in enumerate(order):
            split = "val" if rank < n_val else ("test" if rank < n_val + n_test else "train")
            recs[i].split = split
            counts[split] += 1
    return {s: counts.get(s, 0) for s in ("train", "val", "test")}


def write_yolo_split_lists(data_yaml_or_dir: Path, spec: DatasetSpec) -> Path:
    """Split a YOLO dataset in place: train/val/test.txt lists next to data.yaml, which is pointed at them.

    The images and labels stay where they are. The old data.yaml is kept as data.yaml.bak.
    """
    data_yaml, raw, _, root = load_data_yaml(Path(data_yaml_or_dir))
    for split in ("train", "val", "test"):
        lines = []
        for r in spec.images:
            if (r.split or "train") == split:
                try:
                    lines.append("./" + r.path.resolve().relative_to(root.resolve()).as_posix())
                except ValueError:
                    lines.append(str(r.path.resolve()))
        (root / f"{split}.txt").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    backup = data_yaml.with_name(data_yaml.name + ".bak")
    if not backup.exists():
        shutil.copy2(data_yaml, backup)
    raw.update({"train": "train.txt", "val": "val.txt", "test": "test.txt"})
    data_yaml.write_text(
        "# Split by inspector data split; the previous file is kept as "
        + backup.name
        + "\n"
        + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return data_yaml
