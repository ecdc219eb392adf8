"""Small-data aids: subsets, class-balanced repeats, defect-free negatives, tiling with clipped labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.data.formats import label_path, read_data_yaml, read_labels
from inspector.training.smalldata import SmallDataOptions, focus_crops, prepare, repeat_factors, tile_image
from tests.builders import tiny_yolo_dataset


def _write(img_dir: Path, name: str, rows: list[str], size: tuple[int, int] = (64, 64)) -> Path:
    img_dir.mkdir(parents=True, exist_ok=True)
    p = img_dir / f"{name}.jpg"
    cv2.imwrite(str(p), np.zeros((size[1], size[0], 3), np.uint8))
    label_path(p).parent.mkdir(parents=True, exist_ok=True)
    label_path(p).write_text("".join(r + "\n" for r in rows))
    return p


def test_repeat_factors_favour_rare_classes(tmp_path: Path) -> None:
    d = tmp_path / "images" / "train"
    common = [_write(d, f"c{i}", ["0 0.5 0.5 0.2 0.2"]) for i in range(8)]
    rare = [_write(d, "r0", ["0 0.5 0.5 0.2 0.2", "3 0.2 0.2 0.1 0.1"])]
    empty = [_write(d, "e0", [])]
    factors = repeat_factors(common + rare + empty, threshold=0.5)
    # class 0 is in 9/10 images: no repeat; class 3 in 1/10: sqrt(0.5 / 0.1) = 2.24 -> 2
    assert factors == [1] * 8 + [2, 1]


def test_prepare_subset_balance_and_negatives(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=10, n_val=2, size=32)
    rare = _write(tmp_path / "ds" / "images" / "train", "rare", ["5 0.5 0.5 0.3 0.3"], (32, 32))
    negs = tmp_path / "negatives"
    negs.mkdir()
    for i in range(3):
        cv2.imwrite(str(negs / f"n{i}.png"), np.zeros((32, 32, 3), np.uint8))
    spec = read_data_yaml(data)
    assert rare in spec.image_paths("train")

    out, notes = prepare(spec, tmp_path / "derived", SmallDataOptions(balance=True, negatives=negs))
    derived = read_data_yaml(out)
    train = derived.image_paths("train")
    assert train.count(rare.absolute()) >= 2  # the only 'tear' image is repeated
    assert sum(1 for p in train if p.parent == negs.absolute()) == 3
    assert derived.image_paths("val") == [p.absolute() for p in spec.image_paths("val")]
    assert derived.names == spec.names
    assert any("class-balanced" in n for n in notes) and any("3 defect-free negative" in n for n in notes)

    out2, notes2 = prepare(spec, tmp_path / "sub", SmallDataOptions(subset=4, seed=1))
    again, _ = prepare(spec, tmp_path / "sub2", SmallDataOptions(subset=4, seed=1))
    assert len(read_data_yaml(out2).image_paths("train")) == 4
    assert read_data_yaml(out2).image_paths("train") == read_data_yaml(again).image_paths("train")  # seeded
    assert "subset of 4 of the 11" in notes2[0]
    with pytest.raises(ValueError, match="asked for 99 training images"):
        prepare(spec, tmp_path / "x", SmallDataOptions(subset=99))


def test_negatives_with_labels_are_refused(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=2, n_val=1, size=32)
    neg = _write(tmp_path / "neg" / "images" / "x", "n", ["1 0.5 0.5 0.1 0.1"])
    with pytest.raises(ValueError, match="must be defect-free"):
        prepare(read_data_yaml(data), tmp_path / "d", SmallDataOptions(negatives=neg.parent))


def test_tiling_clips_boxes_and_keeps_mostly_visible_ones(tmp_path: Path) -> None:
    # 200x100 image, tiles of 100 with no overlap: two tiles side by side
    img = _write(
        tmp_path / "ds" / "images" / "train",
        "big",
        [
            "1 0.25 0.5 0.1 0.2",  # x 40..60: wholly in the left tile
            "2 0.5 0.5 0.2 0.2",  # x 80..120: straddles the cut, 50% in each tile
            "3 0.6 0.5 0.3 0.2",  # x 90..150: 1/6 left (dropped there), 5/6 right
        ],
        size=(200, 100),
    )
    tiles = tile_image(img, tmp_path / "out" / "images" / "train", tile=100, overlap=0.0, min_visible=0.4)
    assert [t.name for t in tiles] == ["big_0_0.jpg", "big_100_0.jpg"]
    assert cv2.imread(str(tiles[0])).shape == (100, 100, 3)
    left, right = (read_labels(t) for t in tiles)
    assert sorted(r[0] for r in left) == [1, 2]
    assert sorted(r[0] for r in right) == [2, 3]
    cls2_left = next(r for r in left if r[0] == 2)
    assert cls2_left[1:] == pytest.approx((0.9, 0.5, 0.2, 0.2))  # x 80..100 in the left tile
    cls3_right = next(r for r in right if r[0] == 3)
    assert cls3_right[1:] == pytest.approx((0.25, 0.5, 0.5, 0.2))  # x 100..150 -> 0..50


def test_patch_labels_sit_where_training_reads_them(tmp_path: Path) -> None:
    """A work folder below another ``images`` folder: each patch's label is still the one its image names."""
    img = _write(tmp_path / "ds" / "images" / "train", "big", ["1 0.25 0.5 0.1 0.2"], size=(200, 100))
    out = tmp_path / "images" / "work" / "images" / "train"
    tiles = tile_image(img, out, tile=100, overlap=0.0)
    assert label_path(tiles[0]) == tmp_path / "images" / "work" / "labels" / "train" / "big_0_0.txt"
    assert [r[0] for r in read_labels(tiles[0])] == [1]


def test_prepare_tiles_only_large_images(tmp_path: Path) -> None:
    data = tiny_yolo_dataset(tmp_path / "ds", n_train=2, n_val=1, size=32)
    _write(tmp_path / "ds" / "images" / "train", "big", ["0 0.5 0.5 0.1 0.1"], size=(512, 256))
    out, notes = prepare(read_data_yaml(data), tmp_path / "d", SmallDataOptions(tile=128, tile_overlap=0.0))
    train = read_data_yaml(out).image_paths("train")
    assert sum(1 for p in train if p.name.startswith("big_")) == 4 * 2
    assert sum(1 for p in train if not p.name.startswith("big_")) == 2
    assert "1 large images cut into 128 px patches" in notes[0]


def test_symlinked_images_keep_their_own_labels(tmp_path: Path) -> None:
    """Imported datasets link images from elsewhere; the label sits beside the link, not the target."""
    elsewhere = tmp_path / "store"
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    ds = tmp_path / "ds"
    (ds / "images" / "train").mkdir(parents=True)
    (ds / "labels" / "train").mkdir(parents=True)
    (ds / "images" / "train" / "a.jpg").symlink_to(elsewhere / "a.jpg")
    (ds / "labels" / "train" / "a.txt").write_text("2 0.5 0.5 0.2 0.2\n")
    (ds / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [a, b, c]\n")
    out, _ = prepare(read_data_yaml(ds / "data.yaml"), tmp_path / "d", SmallDataOptions(subset=1))
    (img,) = read_data_yaml(out).image_paths("train")
    assert img.is_symlink() and read_labels(img) == [(2, 0.5, 0.5, 0.2, 0.2)]


@pytest.mark.parametrize(
    ("percent", "n_train", "expected"),
    [(10, 1260, 126), (25, 1260, 315), (100, 1260, None), (1, 50, 1), (50, 3, 2)],
)
def test_transfer_bench_takes_a_share_of_the_train_split(percent: int, n_train: int, expected: int | None) -> None:
    from inspector.training.bench_transfer import subset_size

    assert subset_size(percent, n_train) == expected


@pytest.mark.parametrize("percent", [0, -5, 101])
def test_transfer_bench_refuses_a_share_outside_0_100(percent: int) -> None:
    from inspector.training.bench_transfer import subset_size

    with pytest.raises(ValueError, match="percentage"):
        subset_size(percent, 100)


def test_focus_crops_keep_small_objects_at_their_own_resolution(tmp_path: Path) -> None:
    # a 640x480 frame: one large item and two small defects far apart -> one native-size crop each
    img = _write(
        tmp_path / "ds" / "images" / "train",
        "frame",
        [
            "0 0.5 0.5 0.8 0.8",  # item 512x384 px: larger than a crop, seen through it
            "1 0.2 0.25 0.03125 0.041667",  # 20x20 px at (118..138, 110..130)
            "2 0.8 0.75 0.0625 0.0208333",  # 40x10 px at (492..532, 355..365)
        ],
        size=(640, 480),
    )
    out_dir = tmp_path / "out" / "images" / "train"
    crops = focus_crops(img, out_dir, 320, np.random.default_rng(0))
    assert len(crops) == 2
    sizes = {1: (20, 20), 2: (40, 10)}
    seen = set()
    for crop in crops:
        assert cv2.imread(str(crop)).shape == (320, 320, 3)  # cut, never resized
        rows = read_labels(crop)
        assert 0 in {r[0] for r in rows}  # the item, clipped: it covers most of the crop
        for cls, _cx, _cy, w, h in rows:
            if cls in sizes:
                assert (w * 320, h * 320) == pytest.approx(sizes[cls], abs=0.01)  # same pixels as in the frame
                seen.add(cls)
    assert seen == {1, 2}
    # the same generator state gives the same crops
    again = focus_crops(img, tmp_path / "again" / "images" / "train", 320, np.random.default_rng(0))
    assert [read_labels(c) for c in again] == [read_labels(c) for c in crops]


def test_focus_crops_of_an_image_without_small_objects(tmp_path: Path) -> None:
    d = tmp_path / "ds" / "images" / "train"
    item_only = _write(d, "item", ["0 0.5 0.5 0.9 0.9"], size=(640, 480))
    empty = _write(d, "empty", [], size=(640, 480))
    (crop,) = focus_crops(item_only, tmp_path / "o" / "images" / "t", 320, np.random.default_rng(1))
    assert [r[0] for r in read_labels(crop)] == [0]
    (crop,) = focus_crops(empty, tmp_path / "o" / "images" / "t", 320, np.random.default_rng(1))
    assert read_labels(crop) == [] and cv2.imread(str(crop)).shape == (320, 320, 3)


@pytest.mark.parametrize(("full_share", "whole"), [(0.0, 0), (1.0, 3)])
def test_prepare_focus_crops_train_and_val_only(tmp_path: Path, full_share: float, whole: int) -> None:
    ds = tmp_path / "ds"
    for split, n in (("train", 3), ("val", 1), ("test", 1)):
        for i in range(n):
            _write(ds / "images" / split, f"{split}{i}", ["0 0.5 0.5 0.5 0.5", "1 0.1 0.1 0.05 0.05"], (640, 480))
    (ds / "data.yaml").write_text("train: images/train\nval: images/val\ntest: images/test\nnames: [item, scratch]\n")
    spec = read_data_yaml(ds / "data.yaml")
    out, notes = prepare(spec, tmp_path / "d", SmallDataOptions(focus=320, focus_full_share=full_share))
    derived = read_data_yaml(out)
    train = derived.image_paths("train")
    assert sum(1 for p in train if p in spec.image_paths("train")) == whole
    assert all(cv2.imread(str(p)).shape[:2] == (320, 320) for p in train if p not in spec.image_paths("train"))
    assert derived.image_paths("test") == [p.absolute() for p in spec.image_paths("test")]  # evaluated whole
    assert "focus crops: 320 px" in notes[0]


def test_a_transfer_run_is_measured_again_only_when_what_decides_it_changes() -> None:
    from inspector.training.bench_transfer import run_key

    key = run_key(10, "ours", 30.0, 0, "name: r\n", "abc")
    assert key == run_key(10, "ours", 30.0, 0, "name: r\n", "abc")
    for changed in (
        run_key(25, "ours", 30.0, 0, "name: r\n", "abc"),
        run_key(10, "scratch", 30.0, 0, "name: r\n", None),
        run_key(10, "ours", 20.0, 0, "name: r\n", "abc"),
        run_key(10, "ours", 30.0, 1, "name: r\n", "abc"),
        run_key(10, "ours", 30.0, 0, "name: r2\n", "abc"),
        run_key(10, "ours", 30.0, 0, "name: r\n", "new weights"),
    ):
        assert changed != key


def test_the_transfer_table_keeps_every_measured_run_in_share_order() -> None:
    from inspector.training.bench_transfer import table

    details = {"100-scratch": {"map50": 0.6}, "10-ours": {"map50": 0.3}, "10-scratch": {"map50": 0.1}}
    assert table(details) == {"10": {"ours": 0.3, "scratch": 0.1}, "100": {"scratch": 0.6}}
    assert list(table(details)) == ["10", "100"]


@pytest.mark.parametrize(("gray_share", "expect_gray"), [(0.0, False), (1.0, True)])
def test_focus_crops_in_grey_on_request(tmp_path: Path, gray_share: float, expect_gray: bool) -> None:
    d = tmp_path / "images" / "train"
    src = _write(d, "a", ["1 0.5 0.5 0.05 0.05"], size=(640, 480))
    colour = np.zeros((480, 640, 3), np.uint8)
    colour[..., 2] = 200  # red: grey makes the three channels equal
    cv2.imwrite(str(src), colour)
    out = focus_crops(src, tmp_path / "out" / "images" / "train", 320, np.random.default_rng(0), gray_share=gray_share)
    img = cv2.imread(str(out[0]))
    channels_equal = bool(np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).max() <= 2)
    assert channels_equal is expect_gray
    assert read_labels(out[0])[0][0] == 1  # the label follows the crop either way


def test_a_transfer_run_key_ignores_settings_left_at_their_defaults(tmp_path: Path) -> None:
    from inspector.training.bench_transfer import recipe_key_text
    from inspector.training.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("name: r\nimgsz: 320\nsmall_data: {balance: true}\n")
    base = load_recipe(path)
    text = recipe_key_text(base)
    assert "imgsz: 320" in text and "balance: true" in text
    assert "gray_share" not in text and "role" not in text  # fields at their defaults: no part of the key
    changed = base.model_copy(update={"small_data": base.small_data.model_copy(update={"gray_share": 0.3})})
    assert recipe_key_text(changed) != text
