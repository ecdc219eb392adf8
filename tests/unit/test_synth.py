"""The synthetic bench: deterministic, labels on the rendered defects, truth enough to grade, codes that read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from inspector.data.formats import read_dataset
from inspector.data.synth import FAMILY_ZONES, Bench, DefectMix, generate, image_seed, render_sample
from inspector.data.synth.camera import CameraParams, apply
from inspector.data.synth.codes import (
    decode_codes,
    draw_ean13,
    draw_qr,
    ean13_check_digit,
    ean13_modules,
    random_ean13,
)
from inspector.data.synth.dataset import _render
from inspector.data.synth.scene import _Light, _packing_slip
from inspector.data.validate import validate
from inspector.items import FAMILIES, Sku
from inspector.labelmap import default_labelmap

SIZE = (320, 240)
NAMES = default_labelmap().names


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Rendering is many small steps: one thread is quicker (the pictures are the same either way)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_same_seed_same_picture_other_seed_other_picture() -> None:
    a = Bench(3, SIZE).sample(5)
    b = Bench(3, SIZE).sample(5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    assert a.meta == b.meta
    c = Bench(3, SIZE).sample(6)
    assert not np.array_equal(a.image, c.image)
    r1, r2 = render_sample(11, SIZE), render_sample(11, SIZE)
    np.testing.assert_array_equal(r1.image, r2.image)
    torch.set_num_threads(2)  # any worker, any thread count: the same picture
    try:
        np.testing.assert_array_equal(render_sample(11, SIZE).image, r1.image)
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_fall_on_the_rendered_defects(family: str) -> None:
    """Inside each defect box the picture differs from the clean render; far from every box it does not."""
    checked = 0
    for k in range(3):
        s = Bench(40 + k, SIZE).sample(k, family=family, defect_free=False)
        assert s.meta["family"] == family and s.class_ids[0] == 0
        diff = np.abs(s.image.astype(np.int16) - s.clean.astype(np.int16)).max(axis=2)
        near = np.zeros(diff.shape, bool)
        for (x0, y0, x1, y1), c in zip(s.xyxy[1:], s.class_ids[1:], strict=True):
            inside = diff[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            assert inside.size and (inside > 12).mean() > 0.03, (family, NAMES[c], inside.max())
            pad = 24  # blur and 8x8 JPEG blocks spread a change by a few pixels
            near[max(0, int(y0) - pad) : int(y1) + pad, max(0, int(x0) - pad) : int(x1) + pad] = True
            checked += 1
        assert (diff[~near] > 3).mean() < 0.002  # the defects are where the labels are, nowhere else
    assert checked > 0


def test_boxes_lie_in_the_frame_and_defects_on_the_item() -> None:
    for seed in range(12):
        s = Bench(seed, SIZE).sample(seed, defect_free=False)
        w, h = SIZE
        assert (s.xyxy[:, :2] >= 0).all() and (s.xyxy[:, 2] <= w).all() and (s.xyxy[:, 3] <= h).all()
        assert ((s.xyxy[:, 2:] - s.xyxy[:, :2]) > 1).all()
        ix0, iy0, ix1, iy1 = s.xyxy[0]
        for x0, y0, x1, y1 in s.xyxy[1:]:
            iw = max(0.0, min(x1, ix1) - max(x0, ix0))
            ih = max(0.0, min(y1, iy1) - max(y0, iy0))
            assert iw * ih >= 0.95 * (x1 - x0) * (y1 - y0)


def test_the_sidecar_is_enough_to_grade() -> None:
    seen = set()
    for seed in range(16):
        s = Bench(seed, SIZE).sample(seed, family=FAMILIES[seed % len(FAMILIES)], defect_free=seed % 4 == 0)
        m = s.meta
        fam = m["family"]
        seen.add(fam)
        assert m["category"] == fam and not m["empty"]
        sku = Sku(**m["sku"])  # the catalogue type accepts it as is
        assert sku.category == fam
        assert sku.has_battery == (fam in ("phone", "tablet", "laptop") or m["variant"] == "speaker") or fam == "boxed"
        assert not sku.hygiene or fam == "bottle"
        assert len(m["item"]["box"]) == 4
        assert len(m["defects"]) == len(s.xyxy) - 1
        if seed % 4 == 0:
            assert m["defects"] == []
        for d, box, cid in zip(m["defects"], s.xyxy[1:], s.class_ids[1:], strict=True):
            assert d["class"] == NAMES[cid]
            assert d["zone"] in FAMILY_ZONES[fam]
            assert 0.0 <= d["severity"] <= 1.0
            np.testing.assert_allclose(d["box"], box, atol=0.01)
            ib = m["item"]["box"]
            area = (box[2] - box[0]) * (box[3] - box[1]) / ((ib[2] - ib[0]) * (ib[3] - ib[1]))
            assert d["area_frac"] == pytest.approx(area, rel=1e-2, abs=1e-4)
        json.dumps(m)  # plain JSON
    assert seen == set(FAMILIES)


def test_empty_bench_is_the_same_camera_every_time() -> None:
    bench = Bench(7, SIZE)
    e1, e2 = bench.empty(), bench.empty()
    np.testing.assert_array_equal(e1, e2)
    assert e1.shape == (240, 320, 3) and e1.dtype == np.uint8
    s = bench.sample(2, empty=True)
    assert s.meta["empty"] and s.meta["family"] is None
    assert len(s.xyxy) == 0 and len(s.class_ids) == 0
    with pytest.raises(ValueError, match="unknown family"):
        bench.sample(1, family="car")


def test_camera_boxes_follow_every_transform() -> None:
    """A white square through the camera: the box that comes out frames the square that comes out."""
    w, h = SIZE
    scene = np.zeros((h, w, 3), np.float32)
    scene[60:140, 100:220] = 1.0
    params = CameraParams(
        startpoints=[[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]],
        endpoints=[[-20, -5], [w + 10, -18], [w + 25, h + 8], [-12, h + 15]],
        defocus=0.8,
        motion=3.0,
        motion_angle=30.0,
        gains=(1.0, 1.0, 1.0),
        brightness=1.0,
        contrast=1.0,
        saturation=1.0,
        read_noise=0.0,
        shot_noise=0.0,
        jpeg_quality=95,
        noise_seed=1,
    )
    outline = np.array([[100, 60], [220, 60], [220, 140], [100, 140]], np.float64)
    (img,), boxes = apply(params, [scene], np.array([[100, 60, 220, 140]], np.float32), [outline])
    ys, xs = np.nonzero(img[:, :, 1] > 128)
    np.testing.assert_allclose(boxes[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=2.0)


def test_generate_writes_a_valid_deterministic_yolo_dataset(tmp_path: Path) -> None:
    size = (160, 120)
    data = generate(tmp_path / "a", 14, seed=5, size=size, progress=False, workers=1)
    generate(tmp_path / "b", 14, seed=5, size=size, progress=False, workers=1)
    report = validate(data)
    assert report.errors == [] and report.images == 14
    spec = read_dataset(data)
    assert spec.names == NAMES
    for r in spec.images:
        other = tmp_path / "b" / r.path.relative_to(tmp_path / "a")
        lab = r.meta["label"]
        assert Path(lab).read_text() == (tmp_path / "b" / Path(lab).relative_to(tmp_path / "a")).read_text()
        assert other.read_bytes() == r.path.read_bytes()
        meta = json.loads((tmp_path / "a" / "meta" / r.split / f"{r.path.stem}.json").read_text())
        # image i is a pure function of (seed, i): rendering it alone gives the same truth
        alone = _render(image_seed(5, meta["index"]), size, with_clean=False)
        np.testing.assert_allclose(r.pixel_boxes, alone.xyxy, atol=1e-3)
        np.testing.assert_array_equal(r.class_ids, alone.class_ids)
    summary = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert sum(summary["splits"].values()) == 14
    with pytest.raises(ValueError, match="already holds a dataset"):
        generate(tmp_path / "a", 2, seed=5, size=size, progress=False, workers=1)


def test_a_dataset_has_defect_free_items_and_empty_benches(tmp_path: Path) -> None:
    generate(tmp_path / "ds", 60, seed=2, size=(128, 96), progress=False, workers=1)
    summary = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert 0.3 <= summary["defect_free_share"] < 0.6
    assert summary["empty_images"] >= 1
    assert sum(summary["boxes_per_class"][n] for n in NAMES[1:]) > 20


def test_a_training_render_can_be_richer_in_defects(tmp_path: Path) -> None:
    rich = DefectMix(defect_free_p=0.0, counts=(3, 4))
    generate(tmp_path / "rich", 24, seed=2, size=(128, 96), progress=False, workers=1, mix=rich)
    generate(tmp_path / "plain", 24, seed=2, size=(128, 96), progress=False, workers=1)
    rich_sum = json.loads((tmp_path / "rich" / "dataset.json").read_text())
    plain_sum = json.loads((tmp_path / "plain" / "dataset.json").read_text())
    assert rich_sum["defect_mix"] == {"defect_free_p": 0.0, "defects_per_item": [3, 4]}
    assert rich_sum["defect_free_share"] < plain_sum["defect_free_share"]

    def defects(summary: dict[str, Any]) -> int:
        return sum(summary["boxes_per_class"][n] for n in NAMES[1:])

    assert defects(rich_sum) > 1.5 * defects(plain_sum)
    # the default mix is the generator as it always was: the same picture as a render without one
    np.testing.assert_array_equal(
        _render(image_seed(2, 3), (128, 96), with_clean=False, mix=DefectMix()).image,
        _render(image_seed(2, 3), (128, 96), with_clean=False).image,
    )


@pytest.mark.parametrize(("free", "counts"), [(1.5, (1,)), (0.2, ()), (0.2, (0, 1)), (0.2, (9,))])
def test_a_defect_mix_out_of_range_is_refused(free: float, counts: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="defect"):
        DefectMix(free, counts)


def test_ean13_encoding_is_the_standard_one() -> None:
    assert ean13_check_digit("400638133393") == 1  # a published example
    mods = ean13_modules("4006381333931")
    assert len(mods) == 95 and mods.startswith("101") and mods.endswith("101") and mods[45:50] == "01010"
    with pytest.raises(ValueError, match="check digit"):
        ean13_modules("4006381333932")
    code = random_ean13(np.random.default_rng(0))
    assert int(code[-1]) == ean13_check_digit(code[:12])


def test_drawn_codes_are_read_back_by_opencv() -> None:
    canvas = np.full((300, 420), 255, np.uint8)
    canvas[20 : 20 + 98, 40 : 40 + 234] = draw_ean13("4006381333931", module=2)
    canvas = cv2.GaussianBlur(canvas, (3, 3), 0.8)  # a camera never sees perfectly sharp bars
    q = draw_qr("RMA-2025-000123", module=4)
    canvas[160 : 160 + q.shape[0], 300 : 300 + q.shape[1]] = q[:140, :120] if q.shape[0] > 140 else q
    found = set(decode_codes(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)))
    assert ("EAN_13", "4006381333931") in found
    assert ("QR", "RMA-2025-000123") in found


def test_the_packing_slip_qr_code_reads_and_its_text_is_in_the_truth() -> None:
    scene = np.full((480, 640, 3), 0.3, np.float32)
    light = _Light((0.0, -1.0), (0.0, 5.0), 4.0, 0.4, 0.5, (1.0, 1.0, 1.0))
    _, codes = _packing_slip(scene, np.random.default_rng(4), (320.0, 240.0), 200.0, 250.0, light, 480.0)
    qr = [cm for _, cm in codes if cm["symbology"] == "QR"]
    assert len(qr) == 1 and qr[0]["text"].startswith("RMA-")
    found = decode_codes(np.clip(scene * 255, 0, 255).astype(np.uint8))
    assert ("QR", qr[0]["text"]) in found


def test_one_split_alone_is_the_same_images_as_in_the_whole_render(tmp_path: Path) -> None:
    """``only="val"`` renders the validation images of a render (same indices, same pictures), nothing else."""
    whole = generate(tmp_path / "whole", 16, seed=7, size=(128, 96), val=0.3, test=0.0, progress=False, workers=1)
    part = generate(tmp_path / "part", 16, 7, size=(128, 96), val=0.3, test=0.0, progress=False, workers=1, only="val")
    val = sorted(p.name for p in (whole.parent / "images" / "val").iterdir())
    assert val and sorted(p.name for p in (part.parent / "images" / "val").iterdir()) == val
    assert not any((part.parent / "images" / "train").iterdir())
    for name in val:
        a = cv2.imread(str(whole.parent / "images" / "val" / name))
        b = cv2.imread(str(part.parent / "images" / "val" / name))
        assert np.array_equal(a, b)
    assert json.loads((part.parent / "dataset.json").read_text())["images"] == len(val)
    with pytest.raises(ValueError, match="no image"):
        generate(tmp_path / "none", 2, 7, size=(128, 96), val=0.01, test=0.0, progress=False, workers=1, only="test")
