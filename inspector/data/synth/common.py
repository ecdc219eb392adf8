"""Drawing primitives for the synthetic bench: float BGR canvases, anti-aliased shapes, noise and shading.

Canvases are float32 BGR in 0..1 so that shading and blending stay linear; shapes
are rasterised anti-aliased into a small uint8 coverage mask (OpenCV only
anti-aliases 8-bit images) and blended in, touching only their bounding window.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
Colour = tuple[float, float, float]  # BGR, 0..1
Points = npt.NDArray[np.float64]  # (N, 2) x, y

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def rgb(hex_colour: str) -> Colour:
    """A BGR float colour from ``#rrggbb`` (how designers write colours)."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    return (b, g, r)


def jitter_colour(rng: np.random.Generator, c: Colour, amount: float = 0.06) -> Colour:
    d = rng.normal(0.0, amount, 3)
    return (float(np.clip(c[0] + d[0], 0, 1)), float(np.clip(c[1] + d[1], 0, 1)), float(np.clip(c[2] + d[2], 0, 1)))


def lerp(c0: Colour, c1: Colour, t: float) -> Colour:
    return (c0[0] + (c1[0] - c0[0]) * t, c0[1] + (c1[1] - c0[1]) * t, c0[2] + (c1[2] - c0[2]) * t)


def solid(h: int, w: int, c: Colour) -> F32:
    out = np.empty((h, w, 3), np.float32)
    out[:] = c
    return out


# ----------------------------------------------------------------------- noise and textures


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3, gain: float = 0.5) -> F32:
    """Smooth fractal noise in about 0..1: random grids upsampled with cubic interpolation."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gh, gw = max(2, int(h / max(cell, 1.0)) + 2), max(2, int(w / max(cell, 1.0)) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= gain
        cell /= 2.0
    return np.asarray(out / total, np.float32)


def grain(seed: int, h: int, w: int, sigma: float, channels: int = 1) -> F32:
    """White noise, quick: OpenCV's generator seeded from the numpy stream, so it stays deterministic."""
    out = np.empty((h * channels, w), np.float32)  # 2-D: OpenCV would read a 3-D array as channels
    cv2.setRNGSeed(int(seed) & 0x7FFFFFFF)
    cv2.randn(out, np.zeros(1), np.full(1, float(sigma)))
    return out.reshape(h, w, channels) if channels > 1 else out


def streaks(rng: np.random.Generator, h: int, w: int, length: int, horizontal: bool = True) -> F32:
    """Anisotropic noise (brushed metal, wood fibre, paper grain): white noise smeared along one axis."""
    n = grain(int(rng.integers(1 << 30)), h, w, 1.0)
    k = (max(3, length), 1) if horizontal else (1, max(3, length))
    s = np.asarray(cv2.blur(n, k), np.float32)
    return np.asarray(s / (float(s.std()) + 1e-6), np.float32)


# --------------------------------------------------------------------------- shapes


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, steps: int = 6) -> Points:
    """Polygon of a rounded rectangle (corners as arcs of ``steps`` segments)."""
    r = float(max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2)))
    pts: list[tuple[float, float]] = []
    corners = ((x1 - r, y0 + r, -90.0), (x1 - r, y1 - r, 0.0), (x0 + r, y1 - r, 90.0), (x0 + r, y0 + r, 180.0))
    for cx, cy, a0 in corners:
        for k in range(steps + 1):
            a = np.deg2rad(a0 + 90.0 * k / steps)
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
    return np.asarray(pts, np.float64)


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, angle_deg: float = 0.0, steps: int = 36) -> Points:
    t = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    a = np.deg2rad(angle_deg)
    return np.stack([cx + x * np.cos(a) - y * np.sin(a), cy + x * np.sin(a) + y * np.cos(a)], 1)


def smooth_closed(ctrl: Points, samples: int = 80) -> Points:
    """A closed Catmull-Rom curve through control points (organic outlines: shoes, blobs, hands)."""
    n = len(ctrl)
    out = []
    per = max(2, samples // n)
    for i in range(n):
        p0, p1, p2, p3 = ctrl[(i - 1) % n], ctrl[i], ctrl[(i + 1) % n], ctrl[(i + 2) % n]
        for t in np.linspace(0, 1, per, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(
                0.5
                * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)
            )
    return np.asarray(out, np.float64)


def _window(pts: Points, pad: float, h: int, w: int) -> tuple[int, int, int, int] | None:
    x0 = max(0, int(np.floor(pts[:, 0].min() - pad)))
    y0 = max(0, int(np.floor(pts[:, 1].min() - pad)))
    x1 = min(w, int(np.ceil(pts[:, 0].max() + pad)) + 1)
    y1 = min(h, int(np.ceil(pts[:, 1].max() + pad)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def coverage_poly(h: int, w: int, polys: Sequence[Points]) -> F32:
    """Anti-aliased coverage (0..1) of filled polygons on an h x w grid."""
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [np.round(p * _ONE).astype(np.int32) for p in polys], 255, cv2.LINE_AA, _SHIFT)
    return np.asarray(m, np.float32) * np.float32(1 / 255)


def blend(img: F32, cov: F32, colour: Colour | F32, alpha: float = 1.0, x0: int = 0, y0: int = 0) -> None:
    """Paint ``colour`` over ``img`` through coverage ``cov`` placed at (x0, y0), in place."""
    ch, cw = cov.shape
    region = img[y0 : y0 + ch, x0 : x0 + cw]
    a = (cov * np.float32(alpha))[:, :, None]
    col = np.asarray(colour, np.float32)
    if col.ndim == 3:
        col = col[: region.shape[0], : region.shape[1]]
    region += a[: region.shape[0], : region.shape[1]] * (col - region)


def fill_poly(img: F32, pts: Points | Sequence[Points], colour: Colour, alpha: float = 1.0) -> None:
    """Fill one or more polygons (anti-aliased) with a flat colour, in place."""
    polys = [pts] if isinstance(pts, np.ndarray) else list(pts)
    allp = np.concatenate(polys)
    win = _window(allp, 1.0, img.shape[0], img.shape[1])
    if win is None:
        return
    x0, y0, x1, y1 = win
    cov = coverage_poly(y1 - y0, x1 - x0, [p - (x0, y0) for p in polys])
    blend(img, cov, colour, alpha, x0, y0)


def mask_poly(mask: F32, pts: Points | Sequence[Points], value: float = 1.0) -> None:
    """Fill polygons into a single-channel float mask (max-combined), in place."""
    polys = [pts] if isinstance(pts, np.ndarray) else list(pts)
    allp = np.concatenate(polys)
    win = _window(allp, 1.0, mask.shape[0], mask.shape[1])
    if win is None:
        return
    x0, y0, x1, y1 = win
    cov = coverage_poly(y1 - y0, x1 - x0, [p - (x0, y0) for p in polys]) * np.float32(value)
    np.maximum(mask[y0:y1, x0:x1], cov, out=mask[y0:y1, x0:x1])


def coverage_lines(h: int, w: int, lines: Sequence[Points], thickness: float, closed: bool = False) -> F32:
    m = np.zeros((h, w), np.uint8)
    t = max(1, round(thickness))
    cv2.polylines(m, [np.round(p * _ONE).astype(np.int32) for p in lines], closed, 255, t, cv2.LINE_AA, _SHIFT)
    cov = np.asarray(m, np.float32) * np.float32(1 / 255)
    if thickness < 1.0:  # thinner than a pixel: fainter, not thinner
        cov *= np.float32(thickness)
    return cov


def polyline(
    img: F32,
    pts: Points | Sequence[Points],
    colour: Colour,
    thickness: float = 1.0,
    alpha: float = 1.0,
    closed: bool = False,
) -> None:
    """Draw anti-aliased polylines, in place."""
    lines = [pts] if isinstance(pts, np.ndarray) else list(pts)
    allp = np.concatenate(lines)
    win = _window(allp, thickness + 2, img.shape[0], img.shape[1])
    if win is None:
        return
    x0, y0, x1, y1 = win
    cov = coverage_lines(y1 - y0, x1 - x0, [p - (x0, y0) for p in lines], thickness, closed)
    blend(img, cov, colour, alpha, x0, y0)


def text(
    img: F32,
    s: str,
    org: tuple[float, float],
    height: float,
    colour: Colour,
    thickness: int = 1,
    font: int = cv2.FONT_HERSHEY_SIMPLEX,
    alpha: float = 1.0,
) -> float:
    """Anti-aliased text whose capital height is about ``height`` px; returns its width in px."""
    scale = max(0.1, height / 22.0)
    (tw, th), base = cv2.getTextSize(s, font, scale, thickness)
    x, y = round(org[0]), round(org[1])
    x0, y0 = max(0, x - 2), max(0, y - th - 2)
    x1, y1 = min(img.shape[1], x + tw + 2), min(img.shape[0], y + base + 2)
    if x1 <= x0 or y1 <= y0:
        return float(tw)
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.putText(m, s, (x - x0, y - y0), font, scale, 255, thickness, cv2.LINE_AA)
    blend(img, np.asarray(m, np.float32) * np.float32(1 / 255), colour, alpha, x0, y0)
    return float(tw)


def paste_grey(
    img: F32, patch: U8, x: int, y: int, ink: Colour = (0.05, 0.05, 0.05), paper: Colour | None = None
) -> None:
    """Print a grey patch (a barcode, a QR code) onto the canvas: dark where the patch is dark."""
    h, w = patch.shape
    if x < 0 or y < 0 or y + h > img.shape[0] or x + w > img.shape[1]:
        return
    cov = 1.0 - np.asarray(patch, np.float32) / 255.0
    region = img[y : y + h, x : x + w]
    if paper is not None:
        region[:] = paper
    blend(img, cov, ink, 1.0, x, y)


# -------------------------------------------------------------------------- shading


def bevel(mask: F32, radius: float, light: tuple[float, float], strength: float = 1.0) -> F32:
    """Shading of a raised shape: edges facing the light brighten, the others darken (additive, HxW)."""
    r = max(1.0, radius)
    k = int(r * 3) | 1
    hmap = cv2.GaussianBlur(mask, (k, k), r / 1.5)
    gx = cv2.Sobel(hmap, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(hmap, cv2.CV_32F, 0, 1, ksize=3)
    # A surface sloping towards the light (negative of the height gradient) is brighter.
    # Sobel 3x3 is 8 times the derivative.
    shade = -(gx * light[0] + gy * light[1]) * (r * 0.9 * strength / 8.0)
    return np.asarray(np.clip(shade, -0.6, 0.6) * mask, np.float32)


def radial(h: int, w: int, cx: float, cy: float, r: float) -> F32:
    """exp(-d^2 / r^2) around (cx, cy): hot spots, dents, soft highlights."""
    ys = (np.arange(h, dtype=np.float32) - np.float32(cy)) / np.float32(max(r, 1e-3))
    xs = (np.arange(w, dtype=np.float32) - np.float32(cx)) / np.float32(max(r, 1e-3))
    return np.asarray(np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2)), np.float32)


def linear_ramp(h: int, w: int, angle_deg: float) -> F32:
    """A -1..1 ramp across the canvas along ``angle_deg`` (lighting gradients)."""
    a = np.deg2rad(angle_deg)
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None] * np.float32(np.sin(a) * h / max(h, w))
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * np.float32(np.cos(a) * w / max(h, w))
    return np.asarray(xs + ys, np.float32)


def random_walk(
    rng: np.random.Generator, start: tuple[float, float], angle: float, length: float, step: float, wiggle: float
) -> Points:
    """A jagged path (cracks, tears): steps of ``step`` px with angle noise ``wiggle`` (radians)."""
    n = max(2, int(length / max(step, 0.5)))
    pts = [start]
    x, y, a = start[0], start[1], angle
    for _ in range(n):
        a += float(rng.normal(0.0, wiggle))
        x += step * np.cos(a)
        y += step * np.sin(a)
        pts.append((x, y))
    return np.asarray(pts, np.float64)


def bezier(
    p0: Sequence[float] | npt.NDArray[np.float64],
    p1: Sequence[float] | npt.NDArray[np.float64],
    p2: Sequence[float] | npt.NDArray[np.float64],
    n: int = 24,
) -> Points:
    t = np.linspace(0, 1, n)[:, None]
    a, b, c = np.asarray(p0, np.float64), np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    return np.asarray((1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c, np.float64)
