"""The image-quality gate: good views pass, dark, bright, clipped and blurred views are named."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from inspector.grading import QualityThresholds, assess_quality
from inspector.types import Image


def bench(w: int = 640, h: int = 480, seed: int = 0) -> Image:
    """A bench with a dark phone-like item, a highlight line and sensor noise."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 110, np.uint8) + rng.integers(0, 12, (h, w, 3), dtype=np.uint8)
    sx, sy = w / 640, h / 480
    cv2.rectangle(img, (int(200 * sx), int(100 * sy)), (int(440 * sx), int(400 * sy)), (40, 40, 40), -1)
    cv2.rectangle(img, (int(215 * sx), int(120 * sy)), (int(425 * sx), int(380 * sy)), (90, 60, 30), -1)
    cv2.line(img, (int(250 * sx), int(150 * sy)), (int(350 * sx), int(300 * sy)), (230, 230, 230), 2)
    return img


def _half_black(img: Image) -> Image:
    """Most of the frame clipped to black (a shadow), the rest well lit: dark but not too dark overall."""
    out = np.asarray(cv2.add(img, np.full(img.shape, 90, np.uint8)), dtype=np.uint8)
    out[:, : out.shape[1] * 3 // 5] = 0
    return out


@pytest.mark.parametrize(
    ("make", "problems"),
    [
        (lambda: bench(), ()),
        (lambda: bench(1280, 960), ()),
        (lambda: cv2.cvtColor(bench(), cv2.COLOR_BGR2GRAY), ()),
        (lambda: np.full((480, 640, 3), 128, np.uint8), ()),  # a bare, featureless bench is not blurred
        (lambda: cv2.GaussianBlur(bench(), (0, 0), 3), ("blurred",)),
        (lambda: cv2.GaussianBlur(bench(1280, 960), (0, 0), 6), ("blurred",)),
        (lambda: (bench() * 0.2).astype(np.uint8), ("too dark",)),
        (lambda: cv2.add(bench(), np.full((480, 640, 3), 180, np.uint8)), ("too bright", "overexposed")),
        (lambda: _half_black(bench()), ("underexposed",)),
        (lambda: np.zeros((480, 640, 3), np.uint8), ("too dark", "underexposed")),
    ],
    ids=[
        "sharp",
        "sharp-large",
        "grey",
        "bare",
        "blurred",
        "blurred-large",
        "dark",
        "bright",
        "clipped-black",
        "black",
    ],
)
def test_quality_problems(make: Callable[[], Image], problems: tuple[str, ...]) -> None:
    q = assess_quality(make())
    assert q.problems == problems, q
    assert q.ok is (not problems)
    assert set(q.to_dict()) >= {"brightness", "sharpness", "overexposed", "underexposed", "ok", "problems"}


def test_thresholds_are_settings() -> None:
    img = bench()
    assert assess_quality(img).ok
    strict = QualityThresholds(min_sharpness=1e9)
    assert assess_quality(img, strict).problems == ("blurred",)
    assert assess_quality((img * 0.2).astype(np.uint8), QualityThresholds(min_brightness=0)).ok


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((48, 64, 3), np.float32), "uint8"),
        (np.zeros((48, 64, 4), np.uint8), "HxW or HxWx3"),
        (np.zeros((4, 4, 3), np.uint8), "too small"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_are_refused(image: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assess_quality(image)  # type: ignore[arg-type]
