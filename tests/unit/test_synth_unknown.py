"""Damage no detector is trained on: rendered only when asked, never labelled, default renders unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from inspector.data.synth import ALLOWED, DEFECTS, Bench, render_sample
from inspector.data.synth.defects import UNKNOWN
from inspector.data.synth.scene import DEFAULT_MIX, DefectMix

# The renders below as the engine made them before unknown damage was added to it: the default mix,
# `inspector data synth` and `make model` must see the same items, boxes and pixels. Pixels are compared by
# the mean of each channel of each quadrant within 0.05 of a grey level, not byte for byte: OpenCV's and
# numpy's vector code round the last bit differently on different CPUs (an Intel and an AMD machine gave
# other bytes for the same renders), while one more random draw or changed paint moves these means by far more.
DEFAULT_RENDERS: list[dict[str, Any]] = [
    {
        "image": [155.38, 137.2, 128.95, 145.58, 126.53, 114.37, 118.23, 95.4, 78.95, 123.15, 100.39, 84.95],
        "clean": [154.84, 136.55, 128.26, 145.58, 126.53, 114.37, 118.23, 95.4, 78.95, 123.15, 100.39, 84.95],
        "boxes": [[127.9, 76.6, 405.1, 251.0], [131.0, 147.4, 195.3, 208.6]],
        "classes": [0, 3],
        "what": ["phone", "back", "SYN-PHO-38051", ["crack"]],
    },
    {
        "image": [121.79, 179.72, 211.03, 106.23, 159.52, 190.13, 107.14, 150.87, 176.01, 90.84, 136.56, 162.86],
        "clean": [121.79, 179.72, 211.03, 106.23, 159.52, 190.13, 107.14, 150.87, 176.01, 90.84, 136.56, 162.86],
        "boxes": [[217.1, 63.7, 367.6, 442.3]],
        "classes": [0],
        "what": ["appliance", "speaker", "SYN-APP-46908", []],
    },
    {
        "image": [55.14, 61.38, 48.43, 45.26, 51.79, 39.95, 65.83, 69.0, 58.1, 53.62, 56.39, 49.06],
        "what": ["bottle", "bottle", "SYN-BOT-21148", ["stain"]],
    },
]


def _quadrant_means(img: np.ndarray) -> list[float]:  # type: ignore[type-arg]
    h, w = img.shape[:2]
    return [
        float(img[y : y + h // 2, x : x + w // 2, c].mean()) for y in (0, h // 2) for x in (0, w // 2) for c in range(3)
    ]


def _what(meta: dict[str, Any]) -> list[Any]:
    return [meta["family"], meta["variant"], meta["sku"]["sku"], [d["class"] for d in meta["defects"]]]


def test_default_renders_are_what_they_were() -> None:
    samples = [render_sample(seed) for seed in (0, 7)]
    for s, want in zip(samples, DEFAULT_RENDERS, strict=False):
        assert _what(s.meta) == want["what"]
        assert [int(c) for c in s.class_ids] == want["classes"]
        assert np.asarray(s.xyxy) == pytest.approx(np.asarray(want["boxes"]), abs=0.06)
        assert _quadrant_means(s.image) == pytest.approx(want["image"], abs=0.05)
        assert _quadrant_means(s.clean) == pytest.approx(want["clean"], abs=0.05)
    r = Bench(5).render(11, family="bottle")  # the dataset writer's path: no clean twin
    assert _what(r.meta) == DEFAULT_RENDERS[2]["what"]
    assert _quadrant_means(r.image) == pytest.approx(DEFAULT_RENDERS[2]["image"], abs=0.05)


def test_unknown_kinds_are_outside_every_detector_class() -> None:
    allowed = {cls for zones in ALLOWED.values() for classes in zones.values() for cls in classes}
    assert not set(UNKNOWN) & (allowed | set(DEFECTS))
    assert DefectMix() == DEFAULT_MIX  # the default mix has no field that could ask for them


@pytest.mark.parametrize(("family", "kind"), [("boxed", "burn"), ("laptop", "sticker_residue")])
def test_unknown_damage_renders_when_asked_with_its_box_and_no_label(family: str, kind: str) -> None:
    bench = Bench(3)
    plain = bench.render(4, family=family, defect_free=True, with_clean=True)
    hurt = bench.render(4, family=family, defect_free=True, unknown=(kind,), with_clean=True)
    assert "unknown" not in plain.meta
    (u,) = hurt.meta["unknown"]
    assert u["class"] == kind
    # the same item and picture otherwise: same labels (the item only), same clean twin
    assert np.array_equal(plain.class_ids, hurt.class_ids)
    assert hurt.meta["defects"] == []
    assert plain.clean is not None and hurt.clean is not None
    assert np.array_equal(plain.clean, hurt.clean)
    changed = np.abs(hurt.image.astype(np.int16) - hurt.clean).max(axis=2) > 12
    ys, xs = np.nonzero(changed)
    assert len(xs) > 50
    x0, y0, x1, y1 = u["box"]
    inside = (xs >= x0 - 3) & (xs <= x1 + 3) & (ys >= y0 - 3) & (ys <= y1 + 3)
    assert inside.mean() > 0.95  # the box is where the damage is


def test_an_unknown_kind_of_damage_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'melted'"):
        Bench(0).render(1, unknown=("melted",))
