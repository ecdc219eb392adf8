"""Start-of-shift check: planted faults against a stored empty-bench reference."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from station.shiftcheck import ShiftCheckConfig, camera_shift, check_bench
from tests.station.standin import textured_bench

REFERENCE = textured_bench(640, 480, seed=11)


def _noisy(img: np.ndarray, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 2.0, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _scale(img: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _cast(img: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32)
    out[..., 2] *= 1.3  # warmer light: more red, less blue
    out[..., 0] *= 0.8
    return np.clip(out, 0, 255).astype(np.uint8)


def _shift(img: np.ndarray, dx: float = 14, dy: float = -9) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)


FAULTS: list[tuple[str, Callable[[np.ndarray], np.ndarray], set[str]]] = [
    ("clean", lambda im: im, set()),
    ("dimmer lights", lambda im: _scale(im, 0.6), {"brightness_changed"}),
    ("lights off", lambda im: _scale(im, 0.25), {"dark"}),
    ("washed out", lambda im: _scale(im, 3.0), {"bright"}),
    ("smudged lens", lambda im: cv2.GaussianBlur(im, (0, 0), 3.0), {"blurred"}),
    ("colour cast", _cast, {"colour_cast"}),
    ("camera knocked", _shift, {"camera_moved"}),
    ("another scene", lambda im: textured_bench(640, 480, seed=99), {"view_changed"}),
]


@pytest.mark.parametrize(("fault", "plant", "codes"), FAULTS, ids=[f[0] for f in FAULTS])
def test_planted_faults_give_their_warning_and_no_other(fault, plant, codes) -> None:
    result = check_bench(_noisy(plant(REFERENCE)), REFERENCE, "cam0")
    assert {w.code for w in result.warnings} == codes, [w.message for w in result.warnings]
    assert result.ok is (not codes)
    assert result.has_reference


def test_the_shift_is_measured_in_pixels_and_direction() -> None:
    dx, dy, peak = camera_shift(_shift(REFERENCE, 14, -9), REFERENCE)
    assert dx == pytest.approx(14, abs=0.5) and dy == pytest.approx(-9, abs=0.5)
    assert peak > 0.3
    result = check_bench(_shift(REFERENCE), REFERENCE)
    assert "dx +14" in result.warnings[0].message and "dy -9" in result.warnings[0].message


def test_a_small_wobble_is_tolerated() -> None:
    assert check_bench(_noisy(_shift(REFERENCE, 2, 1)), REFERENCE).ok


def test_without_reference_only_absolute_checks_run() -> None:
    assert check_bench(_noisy(REFERENCE), None).ok
    dark = check_bench(_scale(REFERENCE, 0.2), None)
    assert [w.code for w in dark.warnings] == ["dark"] and not dark.has_reference
    assert "colour_cast" not in dark.measures


def test_limits_are_configurable_and_reported() -> None:
    strict = ShiftCheckConfig(max_shift_px=1.0)
    result = check_bench(_noisy(_shift(REFERENCE, 2, 1)), REFERENCE, config=strict)
    assert [w.code for w in result.warnings] == ["camera_moved"]
    as_json = result.to_dict()
    assert as_json["warnings"][0]["limit"] == 1.0 and as_json["ok"] is False
    assert set(as_json["measures"]) >= {"brightness", "focus_ratio", "colour_cast", "shift_px", "correlation"}


def test_a_reference_of_another_size_still_compares() -> None:
    small_ref = cv2.resize(REFERENCE, (320, 240), interpolation=cv2.INTER_AREA)
    result = check_bench(_noisy(REFERENCE), small_ref)
    assert "blurred" not in {w.code for w in result.warnings}
