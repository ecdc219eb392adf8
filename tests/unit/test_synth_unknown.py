"""Damage no detector is trained on: rendered only when asked, never labelled, default renders unchanged."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from inspector.data.synth import ALLOWED, DEFECTS, Bench, render_sample
from inspector.data.synth.defects import UNKNOWN
from inspector.data.synth.scene import DEFAULT_MIX, DefectMix

# sha256 of the renders below, computed from the engine before unknown damage was added to it:
# the default mix, `inspector data synth` and `make model` must see the very same pixels and sidecars.
DEFAULT_DIGEST = "d9dda3beb94fec98c7b704f831772faa1adaa6eefe93ad146cbb3b407a04a32d"


def test_default_renders_are_byte_for_byte_what_they_were() -> None:
    h = hashlib.sha256()
    for seed in (0, 7):
        s = render_sample(seed)
        for a in (s.image, s.clean, s.xyxy, s.class_ids):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps(s.meta, sort_keys=True).encode())
    r = Bench(5).render(11, family="bottle")  # the dataset writer's path: no clean twin
    h.update(r.image.tobytes())
    h.update(json.dumps(r.meta, sort_keys=True).encode())
    assert h.hexdigest() == DEFAULT_DIGEST


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
