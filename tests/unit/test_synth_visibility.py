"""How plainly a defect shows: the measure orders defects as an eye would, the render's floor drops the faint ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import torch
from typer.testing import CliRunner

from inspector.cli.data import data_app
from inspector.data.synth import scene
from inspector.data.synth.scene import Bench
from inspector.data.synth.visibility import REFERENCE_UNIT, defect_visibility

SIZE = (320, 240)
U8 = npt.NDArray[np.uint8]


def _bgr(g: npt.NDArray[np.float64]) -> U8:
    return np.repeat(np.clip(g + 0.5, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def picture_pair(
    step: float, side: int, noise: float = 4.0, size: tuple[int, int] = (160, 120)
) -> tuple[U8, U8, list[float]]:
    """A grey bench with sensor noise, and the same picture with a square patch ``step`` grey levels darker."""
    w, h = size
    rng = np.random.default_rng(0)
    base = 128.0 + rng.normal(0.0, noise, (h, w))  # the same noise sample in both, as the camera gives
    x0, y0 = w // 2 - side // 2, h // 2 - side // 2
    dirty = base.copy()
    dirty[y0 : y0 + side, x0 : x0 + side] -= step
    return _bgr(dirty), _bgr(base), [x0, y0, x0 + side, y0 + side]


@pytest.mark.parametrize(
    ("strong", "faint"),
    [
        ((30.0, 12), (6.0, 12)),  # same size, more contrast
        ((10.0, 24), (10.0, 4)),  # same contrast, larger
        ((20.0, 16), (2.0, 40)),  # a change below the noise shows on no pixel, however large
    ],
)
def test_a_strong_defect_measures_above_a_faint_one(strong: tuple[float, int], faint: tuple[float, int]) -> None:
    a, b = (defect_visibility(*picture_pair(step, side)) for step, side in (strong, faint))
    assert a.rose > b.rose
    assert a.contrast >= b.contrast or a.area_px > b.area_px


def test_the_noise_is_measured_and_a_sub_noise_change_is_unseen() -> None:
    v = defect_visibility(*picture_pair(2.0, 40, noise=6.0))
    assert 4.0 < v.noise < 8.0
    assert v.area_px < 0.1 * 40 * 40
    assert defect_visibility(*picture_pair(30.0, 12, noise=6.0)).area_px == 12 * 12


def test_the_number_is_stated_at_the_station_camera() -> None:
    v = defect_visibility(*picture_pair(30.0, 12, size=(160, 120)))
    assert v.reference == pytest.approx(v.rose * REFERENCE_UNIT / 120)


def _two_defects() -> tuple[int, list[float]]:
    """An item seed on bench 5 whose two labelled defects differ in visibility (searched for, not assumed)."""
    for k in range(40):
        r = Bench(5, SIZE).render(k, defect_free=False, n_defects=2)
        v = [d["visibility"] for d in r.meta["defects"]]
        if len(v) == 2 and min(v) * 1.5 < max(v):
            return k, v
    raise AssertionError("no item with two defects of different visibility")


def test_the_floor_drops_a_defect_below_it_and_keeps_one_above(monkeypatch: pytest.MonkeyPatch) -> None:
    k, (v0, v1) = _two_defects()
    floor = (v0 + v1) / 2
    before = Bench(5, SIZE).render(k, defect_free=False, n_defects=2, with_clean=True)
    faint, kept = sorted(before.meta["defects"], key=lambda d: d["visibility"])
    monkeypatch.setattr(scene, "MIN_VISIBILITY", floor)
    after = Bench(5, SIZE).render(k, defect_free=False, n_defects=2, with_clean=True)
    assert kept in after.meta["defects"]  # the same defect: box, class, visibility
    assert faint not in after.meta["defects"]
    assert all(d["visibility"] >= floor for d in after.meta["defects"])
    assert after.clean is not None and before.clean is not None
    # the dropped defect is not drawn either: where it was, the picture is its defect-free twin's
    gone = defect_visibility(after.image, after.clean, faint["box"]).rose
    assert gone < 0.2 * defect_visibility(before.image, before.clean, faint["box"]).rose
    # training renders (no twin) obey the same rule
    np.testing.assert_array_equal(Bench(5, SIZE).render(k, defect_free=False, n_defects=2).xyxy, after.xyxy)


def test_the_faint_command_writes_a_contact_sheet(tmp_path: Path) -> None:
    out = tmp_path / "faint.png"
    args = ["faint", "--out", str(out), "--images", "3", "--seed", "1", "--size", "320x240", "--show", "4"]
    threads = torch.get_num_threads()
    try:
        r = CliRunner().invoke(data_app, args)
    finally:
        torch.set_num_threads(threads)  # the command renders on one thread; leave the others theirs
    assert r.exit_code == 0, r.output
    measured = int(r.output.split(" labelled defects in 3 pictures")[0].split()[-1])
    assert measured >= 1  # the sheet shows real defects, not only its blank filler
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] >= 192 and sheet.shape[1] == 6 * 192
