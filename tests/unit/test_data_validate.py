"""validate finds each fault kind on a fixture that plants it; stats and split on small datasets."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from inspector.cli.data import data_app
from inspector.data.formats import read_dataset, write_dataset
from inspector.data.split import stratified_split
from inspector.data.stats import dataset_stats, mosaic
from inspector.data.validate import validate
from tests.unit.test_data_formats import NAMES, make_yolo


def _first_label(root: Path) -> Path:
    return sorted((root / "labels" / "train").glob("*.txt"))[0]


def _missing_image(root: Path) -> None:
    (root / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")


def _missing_label(root: Path) -> None:
    _first_label(root).unlink()


def _append(line: str) -> Callable[[Path], None]:
    def plant(root: Path) -> None:
        lab = _first_label(root)
        lab.write_text(lab.read_text() + line + "\n")

    return plant


def _duplicate(root: Path) -> None:
    src = sorted((root / "images" / "train").glob("*.jpg"))[0]
    shutil.copy(src, root / "images" / "val" / "copy.jpg")
    (root / "labels" / "val" / "copy.txt").write_text("")


def _corrupt(root: Path) -> None:
    img = sorted((root / "images" / "train").glob("*.jpg"))[0]
    img.write_bytes(img.read_bytes()[: len(img.read_bytes()) // 2])


FAULTS = {
    "missing_image": _missing_image,
    "missing_label": _missing_label,
    "out_of_range": _append("1 0.95 0.5 0.2 0.2"),
    "degenerate_box": _append("1 0.5 0.5 0.0 0.1"),
    "unknown_class": _append("9 0.5 0.5 0.1 0.1"),
    "malformed_label": _append("scratch 0.5 0.5 0.1"),
    "duplicate_image": _duplicate,
    "corrupt_image": _corrupt,
}


def test_a_clean_dataset_has_no_problems(tmp_path: Path) -> None:
    report = validate(make_yolo(tmp_path / "ds"))
    assert report.problems == []
    assert report.ok(strict=True)
    assert report.images == 9


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_validate_catches_each_planted_fault(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "ds"
    make_yolo(root)
    FAULTS[kind](root)
    report = validate(root)
    assert {p.kind for p in report.problems} == {kind}, report.problems
    # a missing label reads as a background image: a warning, an error only with --strict
    assert report.ok() is (kind == "missing_label")
    assert not report.ok(strict=True)
    r = CliRunner().invoke(data_app, ["validate", str(root)])
    assert r.exit_code == (0 if kind == "missing_label" else 1), r.output
    assert kind in r.output


def test_a_size_that_disagrees_with_the_labels_is_reported(tmp_path: Path) -> None:
    spec = read_dataset(make_yolo(tmp_path / "ds", n=3))
    write_dataset(spec, tmp_path / "coco", "coco", link="copy")
    img = next((tmp_path / "coco" / "images" / "train").iterdir())
    cv2.imwrite(str(img), np.zeros((10, 12, 3), np.uint8))
    kinds = [p.kind for p in validate(tmp_path / "coco").problems]
    assert kinds == ["size_mismatch"]


def test_stats_counts_and_mosaic(tmp_path: Path) -> None:
    spec = read_dataset(make_yolo(tmp_path / "ds"))
    st = dataset_stats(spec)
    ids = np.concatenate([r.class_ids for r in spec.images])
    assert st["boxes"] == len(ids)
    assert st["boxes_per_class"] == {n: int((ids == k).sum()) for k, n in enumerate(NAMES)}
    assert st["empty_images"] == 1
    assert sum(st["box_size_histogram"].values()) == len(ids)
    out = mosaic(spec, tmp_path / "m.png", n=4, cols=2, tile=64)
    img = cv2.imread(str(out))
    assert img.shape == (128, 128, 3)


def _labelled(tmp_path: Path, n: int) -> Path:
    """A dataset where class 2 is rare: every 10th image holds it."""
    root = tmp_path / "big"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(root / "images" / "train" / f"{i}.png"), np.full((8, 8, 3), i % 255, np.uint8))
        cls = 2 if i % 10 == 0 else i % 2
        (root / "labels" / "train" / f"{i}.txt").write_text(f"{cls} 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b, rare]\n")
    return root


def test_split_is_stratified_and_deterministic(tmp_path: Path) -> None:
    root = _labelled(tmp_path, 200)
    spec = read_dataset(root)
    counts = stratified_split(spec, 0.15, 0.15, seed=3)
    assert counts == {"train": 140, "val": 30, "test": 30}
    rare = [r.split for r in spec.images if 2 in r.class_ids]
    assert (rare.count("val"), rare.count("test")) == (3, 3)  # 15% of the 20 rare images each
    again = read_dataset(root)
    stratified_split(again, 0.15, 0.15, seed=3)
    assert [r.split for r in again.images] == [r.split for r in spec.images]


def test_split_in_place_writes_lists_that_read_back(tmp_path: Path) -> None:
    root = _labelled(tmp_path, 40)
    r = CliRunner().invoke(data_app, ["split", str(root), "--val", "0.25", "--test", "0.25", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert (root / "data.yaml.bak").exists()
    spec = read_dataset(root)
    assert {s: len(spec.split(s)) for s in spec.splits} == {"train": 20, "val": 10, "test": 10}
    assert not spec.problems
