"""How plainly a person could see a defect in the picture, before and after the camera.

The measure is Rose's detectability: a patch of ``area`` pixels that differs from its
surroundings by ``contrast`` grey levels, seen through noise of ``noise`` grey levels, is
seen for sure when ``contrast / noise * sqrt(area)`` is about 5 or more, and not at all
near 1 (A. Rose, *Vision: Human and Electronic*, 1973). The eye pools a patch's pixels, so a
large faint stain and a small dark scratch can be equally plain.

After the camera, the defect's change is the picture minus its defect-free twin (same
scene, same camera, same noise sample), in grey levels; its visible pixels are those it
changes by at least the noise; the noise is measured on the twin around the defect
(:func:`noise_level`), so it holds the sensor noise left after JPEG and the fine texture
that hides a defect as noise does. Before the camera (the rule the renderer applies), the same
number is taken on the lit scene with the bench's sensor noise added in.

Measured against the twin, the number is generous: a person, who has no twin, could find few of
the rendered defects below about 80 after the camera (datasets/synthetic.md, the faintest-defects
sheet), where Rose's 5 would call them all plain.

The number grows with the square root of the pixel count, so it is stated at the station
camera's 1280x960 frame (:data:`REFERENCE_UNIT`): a picture of another size scales it, and
the same defects pass the floor at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

REFERENCE_UNIT = 960.0  # the shorter side of the station camera's frame (1280x960)
MIN_NOISE = 1.0  # grey levels: a flat, noiseless patch still has the 8-bit step
_GREY = np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> luma (BT.601)


@dataclass(frozen=True)
class Visibility:
    """One defect as the picture shows it, in grey levels (0..255) and pixels."""

    contrast: float  # mean change on the visible pixels
    noise: float  # noise and fine texture around the defect
    area_px: int  # pixels changed by at least the noise
    rose: float  # contrast / noise * sqrt(area_px), in this picture
    reference: float  # ``rose`` as the 1280x960 station camera would give it

    def to_dict(self) -> dict[str, float]:
        return {
            "contrast": round(self.contrast, 2),
            "noise": round(self.noise, 2),
            "area_px": float(self.area_px),
            "rose": round(self.rose, 2),
            "reference": round(self.reference, 2),
        }


def grey(image: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """BGR (uint8 0..255 or float) as float luma, in the image's own units."""
    img = np.asarray(image, np.float32)
    return np.asarray(img @ _GREY if img.ndim == 3 else img, np.float32)


def noise_level(grey_patch: npt.NDArray[np.float32]) -> float:
    """Noise and fine texture (grey levels): the robust spread (MAD) of what a 1.5 px blur takes out.

    Robust, so the few pixels of an edge do not count as noise; a 1.5 px residual keeps what
    JPEG leaves of the sensor noise (a 3x3 estimator such as Immerkær's sees JPEG-smoothed
    noise as none).
    """
    if min(grey_patch.shape[:2]) < 3:
        return MIN_NOISE
    resid = np.asarray(
        grey_patch - cv2.GaussianBlur(grey_patch, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT), np.float32
    )
    sigma = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return max(MIN_NOISE, sigma)


def rose_number(change: npt.NDArray[np.float32], noise: float) -> tuple[float, int, float]:
    """Mean contrast, visible area and Rose number of a change (grey levels) seen through ``noise``."""
    mag = np.abs(change)
    seen = mag >= noise
    n = int(seen.sum())
    if n == 0:
        return 0.0, 0, 0.0
    contrast = float(mag[seen].mean())
    return contrast, n, contrast / noise * float(np.sqrt(n))


def _window(box: npt.ArrayLike, shape: tuple[int, ...], pad: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    h, w = shape[:2]
    return (
        slice(max(0, int(np.floor(y0)) - pad), min(h, int(np.ceil(y1)) + pad)),
        slice(max(0, int(np.floor(x0)) - pad), min(w, int(np.ceil(x1)) + pad)),
    )


def defect_visibility(image: npt.NDArray[np.uint8], clean: npt.NDArray[np.uint8], box: npt.ArrayLike) -> Visibility:
    """The defect in ``box`` (xyxy pixels) of a camera picture, against its defect-free twin.

    The change is taken in the box grown by 2 px (blur spreads it); the noise in the box grown
    by 8 px, so that a small defect still has enough twin around it to measure.
    """
    unit = float(min(image.shape[:2]))
    inner, outer = _window(box, image.shape, 2), _window(box, image.shape, 8)
    change = grey(image[inner]) - grey(clean[inner])
    noise = noise_level(grey(clean[outer]))
    contrast, area, rose = rose_number(change, noise)
    return Visibility(contrast, noise, area, rose, rose * REFERENCE_UNIT / unit)


def scene_visibility(
    lit: npt.NDArray[np.float32], lit_twin: npt.NDArray[np.float32], read_noise: float, shot_noise: float, unit: float
) -> float:
    """The Rose number, at the reference frame, of a defect in a lit scene window (BGR 0..1) before the camera.

    The camera's noise at the twin's mean level is added (in quadrature) to the twin's own fine texture.
    """
    g, g_twin = grey(lit) * 255.0, grey(lit_twin) * 255.0
    level = float(np.clip(g_twin.mean() / 255.0, 0.0, 1.0))
    sensor = 255.0 * float(np.sqrt(read_noise**2 + shot_noise**2 * level))
    texture = noise_level(g_twin)
    noise = max(MIN_NOISE, float(np.hypot(sensor, texture)))
    return rose_number(g - g_twin, noise)[2] * REFERENCE_UNIT / float(unit)
