"""Start-of-shift check: the empty bench now against the stored empty-bench reference.

A camera knocked out of place, a lamp gone dark, a smudged lens or a changed
white balance silently worsens every grade of the shift. Comparing the empty
bench with its stored reference before inspections run turns those into
warnings the operator sees on the page.

Pure functions over images; storing and loading the reference is station/references.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from inspector.types import Image


@dataclass(frozen=True, slots=True)
class ShiftCheckConfig:
    min_brightness: float = 40.0  # mean grey level below which the bench is too dark to grade
    max_brightness: float = 225.0  # above which it is washed out
    brightness_ratio: float = 0.25  # relative change of mean brightness vs the reference
    focus_ratio: float = 0.5  # sharpness below this fraction of the reference: out of focus or smudged
    cast_limit: float = 0.035  # change of chromaticity (b, g, r shares) vs the reference
    max_shift_px: float = 4.0  # camera moved by more than this many pixels
    min_correlation: float = 0.15  # phase-correlation peak below this: the view changed altogether


@dataclass(frozen=True, slots=True)
class ShiftWarning:
    code: str  # dark | bright | brightness_changed | blurred | colour_cast | camera_moved | view_changed
    message: str
    value: float
    limit: float

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "value": round(self.value, 3), "limit": self.limit}


@dataclass(frozen=True, slots=True)
class ShiftCheck:
    camera_id: str
    warnings: tuple[ShiftWarning, ...]
    measures: dict[str, float] = field(default_factory=dict)
    has_reference: bool = True

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "camera_id": self.camera_id,
            "ok": self.ok,
            "has_reference": self.has_reference,
            "warnings": [w.to_dict() for w in self.warnings],
            "measures": {k: round(v, 3) for k, v in self.measures.items()},
        }


def _grey(image: Image) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def focus_measure(image: Image) -> float:
    """Detail relative to contrast: variance of the Laplacian over the variance of the image.

    On a 640-wide copy, so references of any size compare; dividing by the
    image's own variance keeps a dimmer bench from reading as a blurred one.
    """
    grey = _grey(image)
    h, w = grey.shape
    if w != 640:
        grey = np.asarray(cv2.resize(grey, (640, max(8, round(h * 640 / w))), interpolation=cv2.INTER_AREA))
    detail = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return detail / max(float(grey.var()), 1e-6)


def chromaticity(image: Image) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Shares of blue, green and red in the mean colour (they sum to 1)."""
    mean = np.asarray(image.reshape(-1, 3).mean(axis=0), dtype=np.float64) + 1e-6
    return np.asarray(mean / mean.sum(), dtype=np.float64)


def camera_shift(image: Image, reference: Image) -> tuple[float, float, float]:
    """(dx, dy, peak) of the current view against the reference, by phase correlation."""
    a = _grey(reference).astype(np.float32)
    b = _grey(image).astype(np.float32)
    if a.shape != b.shape:
        b = np.asarray(cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA), dtype=np.float32)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), peak = cv2.phaseCorrelate(a, b, window)
    return float(dx), float(dy), float(peak)


_CHANNELS = ("blue", "green", "red")


def check_bench(
    image: Image, reference: Image | None, camera_id: str = "cam0", config: ShiftCheckConfig | None = None
) -> ShiftCheck:
    """Warnings for the empty bench ``image``; without a reference only absolute checks run."""
    cfg = config or ShiftCheckConfig()
    warnings: list[ShiftWarning] = []
    brightness = float(_grey(image).mean())
    focus = focus_measure(image)
    measures: dict[str, float] = {"brightness": brightness, "focus": focus}
    if brightness < cfg.min_brightness:
        warnings.append(
            ShiftWarning(
                "dark", f"the bench is too dark (mean {brightness:.0f} of 255)", brightness, cfg.min_brightness
            )
        )
    elif brightness > cfg.max_brightness:
        warnings.append(
            ShiftWarning(
                "bright", f"the bench is washed out (mean {brightness:.0f} of 255)", brightness, cfg.max_brightness
            )
        )
    if reference is None:
        return ShiftCheck(camera_id, tuple(warnings), measures, has_reference=False)

    ref_brightness = float(_grey(reference).mean())
    change = (brightness - ref_brightness) / max(ref_brightness, 1.0)
    measures["brightness_change"] = change
    if abs(change) > cfg.brightness_ratio and not any(w.code in ("dark", "bright") for w in warnings):
        word = "darker" if change < 0 else "brighter"
        warnings.append(
            ShiftWarning(
                "brightness_changed",
                f"the bench is {abs(change):.0%} {word} than its reference: check the lights",
                change,
                cfg.brightness_ratio,
            )
        )

    ref_focus = focus_measure(reference)
    ratio = focus / max(ref_focus, 1e-6)
    measures["focus_ratio"] = ratio
    if ratio < cfg.focus_ratio:
        warnings.append(
            ShiftWarning(
                "blurred",
                f"the image is blurred ({ratio:.0%} of the reference sharpness): clean the lens or refocus",
                ratio,
                cfg.focus_ratio,
            )
        )

    chroma = chromaticity(image) - chromaticity(reference)
    cast = float(np.abs(chroma).max())
    measures["colour_cast"] = cast
    if cast > cfg.cast_limit:
        towards = _CHANNELS[int(np.argmax(chroma))]
        warnings.append(
            ShiftWarning(
                "colour_cast",
                f"colour cast towards {towards} against the reference: check white balance and lights",
                cast,
                cfg.cast_limit,
            )
        )

    dx, dy, peak = camera_shift(image, reference)
    moved = float(np.hypot(dx, dy))
    measures.update({"shift_dx": dx, "shift_dy": dy, "shift_px": moved, "correlation": peak})
    if peak < cfg.min_correlation:
        warnings.append(
            ShiftWarning(
                "view_changed",
                "the view does not match the reference: is the bench empty and the camera pointing at it?",
                peak,
                cfg.min_correlation,
            )
        )
    elif moved > cfg.max_shift_px:
        warnings.append(
            ShiftWarning(
                "camera_moved",
                f"the camera moved by {moved:.0f} px (dx {dx:+.0f}, dy {dy:+.0f}) since the reference was stored",
                moved,
                cfg.max_shift_px,
            )
        )
    return ShiftCheck(camera_id, tuple(warnings), measures, has_reference=True)
