"""Defects painted on an item canvas, each with a box taken from the pixels it actually changed.

A painter draws one defect of one class inside one zone; :func:`paint` measures
what changed (colour or coverage) and returns the tight region, so a label can
never fall beside its defect. Severity (0..1) drives size and contrast.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inspector.data.synth.canvas import ItemCanvas
from inspector.data.synth.common import (
    F32,
    Colour,
    Points,
    bezier,
    coverage_lines,
    coverage_poly,
    ellipse_pts,
    fill_poly,
    lerp,
    polyline,
    random_walk,
    rounded_rect,
    value_noise,
)

DEFECTS = ("scratch", "dent", "crack", "stain", "tear", "missing_part", "broken_seal")

# Which defect classes each zone of each family can show.
_HANDHELD = {
    "screen": ("scratch", "crack", "stain"),
    "back": ("scratch", "crack", "dent", "stain", "missing_part"),
    "edge": ("dent", "scratch", "missing_part"),
}
ALLOWED: dict[str, dict[str, tuple[str, ...]]] = {
    "phone": _HANDHELD,
    "tablet": _HANDHELD,
    "laptop": {
        "lid": ("scratch", "dent", "stain", "crack"),
        "keyboard": ("missing_part", "stain", "scratch"),
        "screen": ("crack", "scratch", "stain"),
        "edge": ("dent", "scratch", "crack"),
    },
    "boxed": {"face": ("tear", "stain", "dent", "scratch"), "seal": ("broken_seal",), "edge": ("dent", "tear")},
    "bottle": {
        "body": ("dent", "scratch", "stain", "crack"),
        "cap": ("missing_part", "broken_seal"),
        "label": ("tear", "stain", "scratch"),
    },
    "shoe": {
        "upper": ("scratch", "stain", "tear"),
        "sole": ("tear", "stain", "scratch"),
        "toe": ("scratch", "stain", "tear"),
    },
    "garment": {
        "front": ("stain", "tear", "missing_part"),
        "seam": ("tear",),
        "label": ("stain", "tear", "missing_part"),
    },
    "appliance": {
        "body": ("scratch", "dent", "crack", "stain"),
        "control": ("missing_part",),
        "cord": ("tear",),
    },
}
# Rare combinations are drawn more often, so every class is well represented in a dataset.
CLASS_WEIGHT: dict[tuple[str, str], float] = {
    ("boxed", "broken_seal"): 3.0,
    ("bottle", "missing_part"): 2.0,
    ("bottle", "broken_seal"): 2.0,
    ("laptop", "missing_part"): 1.5,
    ("appliance", "missing_part"): 1.5,
    ("garment", "missing_part"): 1.5,
    ("garment", "tear"): 1.3,
    ("shoe", "tear"): 1.3,
}
MIN_CHANGED_PX = 24
CHANGE_THRESHOLD = 0.06  # per-channel change (0..1) that counts as part of the defect


@dataclass
class Painted:
    cls: str
    zone: str
    severity: float
    box: tuple[float, float, float, float]  # canvas xyxy of the changed pixels
    hull: Points  # convex hull of the changed pixels (canvas coordinates)
    kind: str  # what was drawn (e.g. "spider-web", "coffee", "missing key")


def options(c: ItemCanvas) -> dict[str, list[str]]:
    """Defect class -> zones of this canvas where it can be drawn."""
    out: dict[str, list[str]] = {}
    for zone, classes in ALLOWED[c.family].items():
        if zone not in c.zones or float(c.zones[zone].max(initial=0.0)) < 0.5:
            continue
        for cls in classes:
            if cls == "missing_part" and not _missing_target(c, zone):
                continue
            if cls == "broken_seal" and zone == "cap" and c.variant != "bottle":
                continue
            out.setdefault(cls, []).append(zone)
    return out


def _missing_target(c: ItemCanvas, zone: str) -> bool:
    if c.family in ("phone", "tablet"):
        return bool(c.anchors.get("buttons")) if zone == "edge" else bool(c.anchors.get("lenses"))
    if c.family == "laptop":
        return zone == "keyboard" and bool(c.anchors.get("keys"))
    if c.family == "appliance":
        return zone == "control" and bool(c.anchors.get("knobs") or c.anchors.get("buttons"))
    if c.family == "garment":
        return bool(c.anchors.get("buttons")) if zone == "front" else zone == "label"
    return c.family == "bottle" and zone == "cap"


def _lum(c: Colour | F32) -> float:
    a = np.asarray(c, np.float32).reshape(-1, 3).mean(0)
    return float(0.114 * a[0] + 0.587 * a[1] + 0.299 * a[2])


def _spot(c: ItemCanvas, zone: str, rng: np.random.Generator, margin: float = 0.0) -> tuple[float, float]:
    """A random point well inside ``zone`` (at least ``margin`` px from its border when possible)."""
    z = (c.zones[zone] > 0.5).astype(np.uint8)
    if margin >= 1.0:
        k = int(margin) * 2 + 1
        zz = np.asarray(cv2.erode(z, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), np.uint8)
        if zz.any():
            z = zz
    ys, xs = np.nonzero(z)
    i = int(rng.integers(len(xs)))
    return float(xs[i]) + float(rng.random()), float(ys[i]) + float(rng.random())


def _window(c: ItemCanvas, pts: Points, pad: float) -> tuple[int, int, int, int]:
    x0 = max(0, int(pts[:, 0].min() - pad))
    y0 = max(0, int(pts[:, 1].min() - pad))
    x1 = min(c.w, int(np.ceil(pts[:, 0].max() + pad)) + 1)
    y1 = min(c.h, int(np.ceil(pts[:, 1].max() + pad)) + 1)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


# ---------------------------------------------------------------------------------- painters


def _scratch(c: ItemCanvas, img: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    surface = c.surfaces[zone]
    length = c.unit * (0.12 + 0.45 * sev)
    cx, cy = _spot(c, zone, rng, length * 0.15)
    ang = rng.uniform(0, np.pi)
    d = np.array([np.cos(ang), np.sin(ang)])
    n = np.array([-d[1], d[0]])
    base = img[int(cy), int(cx)]
    lum = _lum(base)
    soft = surface in ("fabric", "leather", "rubber", "cardboard", "paper")
    if soft:  # a scuff: a short smeared mark
        col: Colour = (0.55, 0.55, 0.55) if lum < 0.4 else tuple(float(v) * 0.6 for v in base)  # type: ignore[assignment]
        thick, alpha, count = 2.0 + 5.0 * sev, 0.5 + 0.35 * sev, 1 + int(sev * 2)
        kind = "scuff"
    else:
        col = (0.82, 0.83, 0.85) if lum < 0.55 else (0.35, 0.35, 0.37)
        thick, alpha, count = 1.0 + 1.0 * (sev > 0.6), 0.55 + 0.4 * sev, 1 + int(sev * 3.5)
        kind = "scratch"
    for k in range(count):
        off = n * rng.normal(0, 2.0 + 3.0 * k)
        ln = length * rng.uniform(0.55, 1.0)
        p0 = np.array([cx, cy]) - d * ln / 2 + off
        p2 = np.array([cx, cy]) + d * ln / 2 + off
        p1 = (p0 + p2) / 2 + n * rng.normal(0, ln * 0.06)
        curve = bezier(p0, p1, p2, 32)
        polyline(img, curve, col, thick, alpha)
    return kind


def _dent(c: ItemCanvas, img: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    surface = c.surfaces[zone]
    r = c.unit * (0.035 + 0.09 * sev)
    cx, cy = _spot(c, zone, rng, r * 0.3)
    rx, ry = r, r * rng.uniform(0.5, 1.0)
    ang = rng.uniform(0, np.pi)
    x0, y0, x1, y1 = _window(c, np.array([[cx - 2.5 * r, cy - 2.5 * r], [cx + 2.5 * r, cy + 2.5 * r]]), 0)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u = (xs - cx) * np.cos(ang) + (ys - cy) * np.sin(ang)
    v = -(xs - cx) * np.sin(ang) + (ys - cy) * np.cos(ang)
    hgt = -np.exp(-((u / rx) ** 2 + (v / ry) ** 2))  # a depression
    gx = np.gradient(hgt, axis=1)
    gy = np.gradient(hgt, axis=0)
    # the steepest slope of exp(-d^2) is 0.86 / r: scale so the walls shade by 0.1 (shallow) to 0.35 (deep)
    peak = 0.15 + 0.25 * sev
    shade = -(gx * c.light[0] + gy * c.light[1]) * (peak * r / 0.86)
    region = img[y0:y1, x0:x1]
    a = c.alpha[y0:y1, x0:x1]
    if surface == "cardboard":  # crushed board: creases and a darker hollow
        region *= (1.0 + (shade - 0.12 * np.exp(-((u / rx) ** 2 + (v / ry) ** 2))) * a)[:, :, None]
        for _ in range(2 + int(3 * sev)):
            t = rng.uniform(0, 2 * np.pi)
            p0 = np.array([cx, cy]) + rng.normal(0, r * 0.2, 2)
            p1 = p0 + np.array([np.cos(t), np.sin(t)]) * r * rng.uniform(0.6, 1.3)
            polyline(img, np.array([p0, p1]), (0.2, 0.25, 0.3), 1.0, 0.6)
        return "crushed"
    region += (shade * a)[:, :, None]
    if sev > 0.5 and surface in ("metal", "glossy", "matte"):
        arc = ellipse_pts(cx, cy, rx * 0.8, ry * 0.8, float(np.degrees(ang)), 24)[: 10 + int(rng.integers(0, 6))]
        polyline(img, arc, (0.1, 0.1, 0.1), 1.0, 0.5)
    return "dent"


def _crack(c: ItemCanvas, img: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    surface = c.surfaces[zone]
    big = c.unit * (0.1 + 0.4 * sev)
    cx, cy = _spot(c, zone, rng, big * 0.1)
    lines: list[Points] = []
    if surface == "glass":
        n_rad = 5 + int(9 * sev)
        radials = []
        for k in range(n_rad):
            a = 2 * np.pi * (k + rng.uniform(-0.3, 0.3)) / n_rad
            ln = big * rng.uniform(0.45, 1.0)
            radials.append(random_walk(rng, (cx, cy), a, ln, max(2.0, big / 14), 0.12))
        lines += radials
        rings = 1 + int(2 * sev)
        for ri in range(rings):
            frac = (ri + 1) / (rings + 1.5)
            for k in range(n_rad):
                a_, b_ = radials[k], radials[(k + 1) % n_rad]
                ia, ib = int(frac * (len(a_) - 1)), int(frac * (len(b_) - 1))
                if rng.random() < 0.75:
                    p0, p1 = a_[ia], b_[ib]
                    mid = (p0 + p1) / 2 + rng.normal(0, big * 0.03, 2)
                    lines.append(np.array([p0, mid, p1]))
        # the impact: a small crushed star
        star = ellipse_pts(cx, cy, big * 0.04 + 1.5, big * 0.04 + 1.5, rng.uniform(0, 90), 7)
        star += rng.normal(0, big * 0.01, star.shape)
        fill_poly(img, star, (0.75, 0.76, 0.8), 0.7)
        col: Colour = (0.78, 0.8, 0.84)
        x0, y0, x1, y1 = _window(c, np.concatenate(lines), 3)
        cov = coverage_lines(y1 - y0, x1 - x0, [ln - (x0, y0) for ln in lines], 1.0)
        cov *= c.alpha[y0:y1, x0:x1]
        # glass edges catch the light: bright fracture lines with a faint halo
        halo = cv2.GaussianBlur(cov, (5, 5), 1.2)
        region = img[y0:y1, x0:x1]
        region += (halo * 0.12)[:, :, None]
        region += (cov * (0.55 + 0.3 * sev))[:, :, None] * (np.asarray(col, np.float32) - region)
        return "spider-web"
    # a hairline crack in plastic or metal: jagged, branching, dark with a light lip
    main = random_walk(rng, (cx, cy), rng.uniform(0, 2 * np.pi), big * 0.8, max(2.0, big / 20), 0.35)
    lines.append(main)
    for _ in range(1 + int(3 * sev)):
        s = main[int(rng.integers(1, len(main)))]
        lines.append(random_walk(rng, (float(s[0]), float(s[1])), rng.uniform(0, 2 * np.pi), big * 0.3, 2.0, 0.4))
    lum = _lum(img[int(cy), int(cx)])
    polyline(img, [ln + 0.8 for ln in lines], (0.92, 0.92, 0.92) if lum < 0.5 else (1.0, 1.0, 1.0), 1.0, 0.35)
    polyline(img, lines, (0.05, 0.05, 0.05) if lum > 0.25 else (0.6, 0.6, 0.62), 1.0 + (sev > 0.6), 0.85)
    return "hairline"


_STAINS: dict[str, Colour] = {
    "coffee": (0.45, 0.62, 0.78),
    "grease": (0.62, 0.7, 0.72),
    "ink": (0.75, 0.45, 0.35),
    "makeup": (0.7, 0.68, 0.92),
    "dirt": (0.55, 0.6, 0.62),
    "rust": (0.35, 0.5, 0.75),
}


def _stain(c: ItemCanvas, img: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    surface = c.surfaces[zone]
    r = c.unit * (0.04 + 0.14 * sev)
    cx, cy = _spot(c, zone, rng, r * 0.4)
    kind = str(rng.choice(list(_STAINS)))
    x0, y0, x1, y1 = _window(c, np.array([[cx - 1.6 * r, cy - 1.6 * r], [cx + 1.6 * r, cy + 1.6 * r]]), 0)
    h, w = y1 - y0, x1 - x0
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    ex = rng.uniform(0.6, 1.0)
    u = ((xs - cx) * np.cos(ang) + (ys - cy) * np.sin(ang)) / r
    v = (-(xs - cx) * np.sin(ang) + (ys - cy) * np.cos(ang)) / (r * ex)
    d = np.sqrt(u**2 + v**2)
    nz = value_noise(rng, h, w, max(4.0, r * 0.5), 3)
    field = (1.0 - d) * 1.6 + (nz - 0.5) * 1.4
    soft = 0.35 if surface == "fabric" else 0.12
    m = np.clip(field / soft, 0.0, 1.0)
    m = m * m * (3 - 2 * m)
    ring = np.clip(1.0 - np.abs(field) / 0.15, 0, 1) * (kind == "coffee")
    opacity = 0.45 + 0.45 * sev
    mottle = 0.65 + 0.7 * value_noise(rng, h, w, max(3.0, r * 0.25), 2)  # pigment settles unevenly
    m = np.asarray(np.clip(m * mottle, 0, 1) * opacity * c.alpha[y0:y1, x0:x1], np.float32)
    region = img[y0:y1, x0:x1]
    col = np.asarray(_STAINS[kind], np.float32)
    if _lum(region[h // 2, w // 2]) < 0.22 or surface == "glass":  # on black glass a smear shows as a haze
        region += (m * 0.22)[:, :, None] * (1.0 - region)
        return "smear"
    region *= 1.0 - m[:, :, None] * (1.0 - col)
    region *= 1.0 - (ring * 0.25 * c.alpha[y0:y1, x0:x1])[:, :, None]
    return kind


def _tear(c: ItemCanvas, img: F32, alpha: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    surface = c.surfaces[zone]
    if zone == "cord":  # split insulation showing the copper
        ys, xs = np.nonzero(c.zones[zone] > 0.5)
        i = int(rng.integers(len(xs)))
        cx, cy = float(xs[i]), float(ys[i])
        r = c.unit * (0.015 + 0.03 * sev) + 2
        core = ellipse_pts(cx, cy, r, r * 0.55, rng.uniform(0, 180), 16)
        fill_poly(img, core, (0.25, 0.5, 0.8), 0.9)
        for _ in range(4):
            p = np.array([cx, cy]) + rng.normal(0, r * 0.4, 2)
            polyline(img, np.array([p, p + rng.normal(0, r * 0.5, 2)]), (0.4, 0.7, 0.95), 1.0, 0.9)
        return "frayed cord"
    length = c.unit * (0.08 + 0.3 * sev)
    cx, cy = _spot(c, zone, rng, length * 0.2)
    ang = rng.uniform(0, 2 * np.pi)
    start = (cx - np.cos(ang) * length / 2, cy - np.sin(ang) * length / 2)
    path = random_walk(rng, start, ang, length, max(2.0, length / 18), 0.3)
    seg = np.diff(path, axis=0)
    nrm = np.stack([-seg[:, 1], seg[:, 0]], 1) / (np.linalg.norm(seg, axis=1, keepdims=True) + 1e-6)
    nrm = np.vstack([nrm, nrm[-1:]])
    t = np.linspace(0, 1, len(path))
    width = (1.5 + c.unit * (0.01 + 0.06 * sev)) * np.sin(np.pi * t) ** 0.7 + 0.3
    left = path + nrm * (width / 2 + rng.normal(0, 0.6, len(path)))[:, None]
    right = path - nrm * (width / 2 + rng.normal(0, 0.6, len(path)))[:, None]
    hole = np.vstack([left, right[::-1]])
    base = img[int(cy) % c.h, int(cx) % c.w].copy()
    if surface == "cardboard":
        kraft: Colour = (0.42, 0.58, 0.72)
        fill_poly(img, hole, kraft)  # the brown board under the printed or top layer
        for k in range(0, len(path) - 1, 2):  # corrugation flutes seen through the rip
            polyline(img, np.array([left[k], right[k]]), (0.25, 0.35, 0.45), 1.0, 0.6)
        shadow = path - nrm * (width / 2 - 1.0)[:, None]
        polyline(img, shadow, (0.12, 0.15, 0.18), max(1.0, float(width.max()) * 0.2), 0.7)
        polyline(img, [left, right], (0.9, 0.92, 0.94), 1.5, 0.9)  # white torn fibre edge
        return "ripped board"
    if surface in ("fabric", "leather", "rubber"):
        fill_poly(img, hole, (0.06, 0.06, 0.07))
        for k in range(1, len(path) - 1, 2):  # frayed threads across the hole
            if rng.random() < 0.6:
                polyline(
                    img,
                    np.array([left[k], right[k] + rng.normal(0, 1.0, 2)]),
                    tuple(float(v) * 1.1 for v in base),  # type: ignore[arg-type]
                    1.0,
                    0.8,
                )
        polyline(img, [left, right], tuple(min(1.0, float(v) * 1.25 + 0.05) for v in base), 1.0, 0.6)  # type: ignore[arg-type]
        return "rip" if surface != "rubber" else "sole separation"
    # a torn label: the surface under it shows where a strip came away
    under = c.anchors.get("under_label")
    fill_poly(img, hole, tuple(float(v) for v in under[0]) if under else (0.6, 0.62, 0.64))  # type: ignore[arg-type]
    polyline(img, [left, right], (0.97, 0.97, 0.97), 1.5, 0.9)
    return "torn label"


def _missing(c: ItemCanvas, img: F32, alpha: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    fam = c.family
    if fam in ("phone", "tablet") and zone == "edge":
        b = c.anchors["buttons"][int(rng.integers(len(c.anchors["buttons"])))]
        _erase(c, img, alpha, b)
        cx = float(b[:, 0].mean())
        inward = 1.0 if cx < c.w / 2 else -1.0
        slot = b.copy()
        slot[:, 0] += inward * (b[:, 0].max() - b[:, 0].min() + 1.0)
        fill_poly(img, slot, (0.03, 0.03, 0.03))
        return "missing button"
    if fam in ("phone", "tablet"):
        lens = c.anchors["lenses"][int(rng.integers(len(c.anchors["lenses"])))]
        fill_poly(img, lens * 1.0, (0.0, 0.0, 0.0))
        cx, cy = lens.mean(0)
        r = float(np.abs(lens[:, 0] - cx).max())
        fill_poly(img, ellipse_pts(cx, cy, r * 0.45, r * 0.45, 0, 12), (0.15, 0.3, 0.2))
        polyline(img, ellipse_pts(cx, cy, r * 1.1, r * 1.1, 0, 24), (0.5, 0.5, 0.5), 1.0, 0.8, closed=True)
        return "missing lens cover"
    if fam == "laptop":
        keys = c.anchors["keys"]
        k = keys[int(rng.integers(len(keys)))]
        cx, cy = k.mean(0)
        fill_poly(img, cx + (k - (cx, cy)) * 1.08 + np.array([0, 0]), (0.03, 0.03, 0.035))
        s = float(np.abs(k[:, 1] - cy).max()) * 0.55
        polyline(
            img,
            [np.array([[cx - s, cy - s], [cx + s, cy + s]]), np.array([[cx - s, cy + s], [cx + s, cy - s]])],
            (0.75, 0.75, 0.75),
            1.0,
            0.9,
        )
        fill_poly(img, ellipse_pts(cx, cy, s * 0.45, s * 0.45, 0, 12), (0.35, 0.35, 0.38), 0.9)
        return "missing key"
    if fam == "appliance":
        targets = list(c.anchors.get("knobs", [])) + list(c.anchors.get("buttons", []))
        t = targets[int(rng.integers(len(targets)))]
        cx, cy = t.mean(0)
        fill_poly(img, t, (0.02, 0.02, 0.02))
        r = float(np.abs(t[:, 0] - cx).max())
        fill_poly(img, ellipse_pts(cx, cy, r * 0.25, r * 0.25, 0, 12), (0.6, 0.6, 0.62))
        return "missing knob" if len(t) > 20 else "missing button"
    if fam == "garment" and zone == "front":
        b = c.anchors["buttons"][int(rng.integers(len(c.anchors["buttons"])))]
        cx, cy = b.mean(0)
        r = float(np.abs(b[:, 0] - cx).max())
        y, x = int(cy), int(np.clip(cx + r * 2.5, 0, c.w - 1))
        fill_poly(img, b * 1.0, tuple(float(v) for v in img[y, x]))  # type: ignore[arg-type]
        for _ in range(3):
            p = np.array([cx, cy]) + rng.normal(0, r * 0.2, 2)
            polyline(img, np.array([p, p + rng.normal(0, r * 0.5, 2)]), (0.9, 0.9, 0.88), 1.0, 0.9)
        return "missing button"
    if fam == "garment":
        lab = c.anchors["label"][0]
        x0, x1 = lab[:, 0].min(), lab[:, 0].max()
        y0, y1 = lab[:, 1].min(), lab[:, 1].max()
        yy, xx = int(min(c.h - 1, y1 + 3)), int((x0 + x1) / 2)
        fill_poly(img, lab, tuple(float(v) for v in img[yy, xx]))  # type: ignore[arg-type]
        fill_poly(img, rounded_rect(x0, y0, x1, y0 + max(1.5, (y1 - y0) * 0.2), 0), (0.92, 0.92, 0.9))
        return "cut label"
    # bottle: the cap (or pump head) is gone and the open neck shows
    cap = c.anchors["cap"][0]
    parts = [cap, *c.anchors.get("pump_head", [])]
    for p in parts:
        _erase(c, img, alpha, p)
    cx0, cx1 = float(min(p[:, 0].min() for p in parts)), float(cap[:, 0].max())
    cy = float(cap[:, 1].mean())
    if c.anchors.get("neck"):
        _, _, neck_d = c.anchors["neck"][0]
    else:
        neck_d = float(cap[:, 1].max() - cap[:, 1].min()) * 0.7
    nx0 = cx0 + (cx1 - cx0) * 0.35
    neck = rounded_rect(nx0, cy - neck_d / 2, cx1 + 1, cy + neck_d / 2, 1)
    body_col = tuple(float(v) for v in img[int(cy), int(min(c.w - 1, cx1 + 6))])
    fill_poly(img, neck, body_col)  # type: ignore[arg-type]
    m = np.zeros_like(alpha)
    from inspector.data.synth.common import mask_poly

    mask_poly(m, neck)
    np.maximum(alpha, m, out=alpha)
    for xr in np.linspace(nx0 + 2, cx1 - 2, 4):  # thread
        polyline(
            img,
            np.array([[xr, cy - neck_d / 2], [xr + 2, cy + neck_d / 2]]),
            lerp(body_col, (0, 0, 0), 0.35),  # type: ignore[arg-type]
            1.0,
            0.7,
        )
    mouth = ellipse_pts(nx0 + 1.5, cy, max(1.5, neck_d * 0.12), neck_d * 0.42, 0, 16)
    fill_poly(img, mouth, (0.04, 0.04, 0.04))
    return "missing cap" if len(parts) == 1 else "missing pump"


def _erase(c: ItemCanvas, img: F32, alpha: F32, pts: Points) -> None:
    """Remove a part: its coverage goes to zero (what lies under it is the bench)."""
    x0, y0, x1, y1 = _window(c, pts, 2)
    cov = coverage_poly(y1 - y0, x1 - x0, [pts - (x0, y0)])
    alpha[y0:y1, x0:x1] *= 1.0 - cov


def _seal(c: ItemCanvas, img: F32, alpha: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    if c.family == "bottle":  # the tamper ring has come away from the cap
        cap = c.anchors["cap"][0]
        x1 = float(cap[:, 0].max())
        y0, y1 = float(cap[:, 1].min()), float(cap[:, 1].max())
        gx = x1 - (x1 - float(cap[:, 0].min())) * 0.28
        gw = 1.5 + 3.0 * sev
        fill_poly(img, rounded_rect(gx - gw / 2, y0 + 1, gx + gw / 2, y1 - 1, 0), (0.05, 0.05, 0.05))
        for yb in np.linspace(y0 + 2, y1 - 2, 4):
            if rng.random() < 0.5:
                polyline(img, np.array([[gx - gw / 2, yb], [gx - gw / 2 - 2, yb + 1]]), (0.9, 0.9, 0.9), 1.0, 0.8)
        return "tamper ring broken"
    seal = c.anchors["seal"][0]
    x0, x1 = float(seal[:, 0].min()), float(seal[:, 0].max())
    y0, y1 = float(seal[:, 1].min()), float(seal[:, 1].max())
    if c.variant == "shipper":  # the tape is cut along the seam and the flaps gape
        cy = (y0 + y1) / 2
        span = (x1 - x0) * (0.2 + 0.6 * sev)
        sx = x0 + rng.uniform(0.05, 0.95) * (x1 - x0 - span)
        gap = random_walk(rng, (sx, cy), 0.0, span, 4.0, 0.05)
        gap[:, 1] = cy + rng.normal(0, 0.6, len(gap))
        wid = 1.5 + 5.0 * sev
        top = gap - np.array([0, wid / 2])
        bot = gap + np.array([0, wid / 2])
        fill_poly(img, np.vstack([top, bot[::-1]]), (0.04, 0.04, 0.05))
        # cut tape edges lift and catch the light
        polyline(img, [top - np.array([0, 1.0]), bot + np.array([0, 1.0])], (0.85, 0.9, 0.95), 1.0, 0.7)
        return "cut tape"
    # retail: the seal sticker is torn through and the lid gapes along the front edge
    mid = (x0 + x1) / 2 + rng.normal(0, (x1 - x0) * 0.1)
    tear = random_walk(rng, (mid, y0), np.pi / 2, y1 - y0, 2.0, 0.35)
    left = tear - np.array([1.0 + 2 * sev, 0])
    right = tear + np.array([1.0 + 2 * sev, 0])
    fill_poly(img, np.vstack([left, right[::-1]]), (0.1, 0.1, 0.1))
    polyline(img, [left, right], (0.98, 0.98, 0.98), 1.0, 0.9)
    gl = (x1 - x0) * (1.0 + 2.0 * sev)
    gy = y1 - 2.0
    polyline(img, np.array([[mid - gl / 2, gy], [mid + gl / 2, gy]]), (0.02, 0.02, 0.02), 1.0 + sev * 1.5, 0.9)
    return "torn seal"


def paint(
    c: ItemCanvas, img: F32, alpha: F32, cls: str, zone: str, sev: float, rng: np.random.Generator
) -> Painted | None:
    """Draw one defect on ``img``/``alpha`` (in place); None when nothing visible came of it."""
    before = img.copy()
    a_before = alpha.copy()
    if cls == "scratch":
        kind = _scratch(c, img, zone, sev, rng)
    elif cls == "dent":
        kind = _dent(c, img, zone, sev, rng)
    elif cls == "crack":
        kind = _crack(c, img, zone, sev, rng)
    elif cls == "stain":
        kind = _stain(c, img, zone, sev, rng)
    elif cls == "tear":
        kind = _tear(c, img, alpha, zone, sev, rng)
    elif cls == "missing_part":
        kind = _missing(c, img, alpha, zone, sev, rng)
    elif cls == "broken_seal":
        kind = _seal(c, img, alpha, zone, sev, rng)
    else:
        raise ValueError(f"unknown defect class {cls!r}; expected one of {', '.join(DEFECTS)}")
    # Keep the defect on the item, and surface defects on their zone (a scratch on the frame
    # stops at the glass); parts that go missing or seals that break may change the outline.
    return _settle(c, img, alpha, before, a_before, cls, zone, sev, kind, cls not in ("missing_part", "broken_seal"))


def _settle(
    c: ItemCanvas,
    img: F32,
    alpha: F32,
    before: F32,
    a_before: F32,
    cls: str,
    zone: str,
    sev: float,
    kind: str,
    on_zone: bool,
) -> Painted | None:
    """Clip a freshly drawn mark to the item (and its zone) and measure the pixels it changed."""
    if on_zone:
        z = cv2.dilate(c.zones[zone], np.ones((3, 3), np.uint8))
        keep = np.minimum(np.maximum(c.alpha, a_before), z)[:, :, None]
    else:
        keep = np.maximum(c.alpha, a_before)[:, :, None]
    np.clip(img, 0.0, 1.0, out=img)
    img[:] = before + (img - before) * keep
    # The defect is what shows on the item as it now is: where a part came away, the evidence is
    # what is left (an open neck, an empty slot), not the bench where the part used to be.
    diff = np.abs(img - before).max(axis=2) * alpha
    changed = (diff > CHANGE_THRESHOLD) & (alpha > 0.5)
    ys, xs = np.nonzero(changed)
    if len(xs) < MIN_CHANGED_PX or np.ptp(xs) < 2 or np.ptp(ys) < 2:
        img[:] = before
        alpha[:] = a_before
        return None
    contours, _ = cv2.findContours(changed.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate([k.reshape(-1, 2) for k in contours])).reshape(-1, 2).astype(np.float64)
    # pixel centres -> pixel extents
    corners = np.concatenate([hull + np.array(d) for d in ((0, 0), (1, 0), (0, 1), (1, 1))])
    box = (
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    )
    return Painted(cls, zone, float(sev), box, corners, kind)


# ------------------------------------------------------------------ damage no detector knows
#
# Kinds of damage that never enter a detector's training set (they are not in ``ALLOWED`` and
# ``_paint_defects`` never draws them): a render asks for them by name, so that a model learned
# from good items only can be measured on damage nobody labelled.

UNKNOWN = ("burn", "sticker_residue")


def _blob(
    c: ItemCanvas, zone: str, r: float, aspect: float, rng: np.random.Generator, rough: float
) -> tuple[tuple[int, int, int, int], F32, F32]:
    """An irregular blob of radius ``r`` inside ``zone``: its window and the signed field (>0 inside)."""
    cx, cy = _spot(c, zone, rng, r * 0.5)
    x0, y0, x1, y1 = _window(c, np.array([[cx - 2.2 * r, cy - 2.2 * r], [cx + 2.2 * r, cy + 2.2 * r]]), 0)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    u = ((xs - cx) * np.cos(ang) + (ys - cy) * np.sin(ang)) / r
    v = (-(xs - cx) * np.sin(ang) + (ys - cy) * np.cos(ang)) / (r * aspect)
    nz = value_noise(rng, y1 - y0, x1 - x0, max(3.0, r * 0.4), 3)
    return (x0, y0, x1, y1), np.asarray(np.sqrt(u**2 + v**2), np.float32), (nz - 0.5) * rough


def _burn(c: ItemCanvas, img: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    """A scorch: a brown-black charred core with a soft brown halo that fades into the surface."""
    r = c.unit * (0.045 + 0.09 * sev)
    (x0, y0, x1, y1), d, nz = _blob(c, zone, r, float(rng.uniform(0.55, 1.0)), rng, 1.2)
    field = 1.0 - d + nz
    core = np.clip(field / 0.25, 0.0, 1.0)
    halo = np.clip((field + 0.9) / 0.9, 0.0, 1.0) ** 2
    a = c.alpha[y0:y1, x0:x1]
    region = img[y0:y1, x0:x1]
    brown = np.asarray((0.22, 0.32, 0.45), np.float32)  # BGR
    char = np.asarray((0.04, 0.05, 0.06), np.float32)
    h = (halo * (0.55 + 0.35 * sev) * a)[:, :, None]
    if _lum(region[region.shape[0] // 2, region.shape[1] // 2]) < 0.25:
        # on a dark face heat shows as a dull, blistered grey-brown bloom round the char
        region += h * 0.6 * (np.asarray((0.3, 0.36, 0.42), np.float32) - region)
    else:
        region *= 1.0 - h * (1.0 - brown)
    k = (core * (0.8 + 0.2 * sev) * a)[:, :, None]
    region += k * (char - region)
    return "scorch"


def _residue(c: ItemCanvas, img: F32, zone: str, sev: float, rng: np.random.Generator) -> str:
    """What a peeled sticker leaves: a pale, slightly glossy patch with torn edges and grime stuck to it."""
    r = c.unit * (0.05 + 0.08 * sev)
    cx, cy = _spot(c, zone, rng, r * 0.5)
    w, h = r * rng.uniform(1.0, 1.8), r * rng.uniform(0.6, 1.1)
    ang = rng.uniform(0, np.pi)
    x0, y0, x1, y1 = _window(c, np.array([[cx - 2 * w, cy - 2 * w], [cx + 2 * w, cy + 2 * w]]), 0)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u = np.abs((xs - cx) * np.cos(ang) + (ys - cy) * np.sin(ang)) / w
    v = np.abs(-(xs - cx) * np.sin(ang) + (ys - cy) * np.cos(ang)) / h
    box = np.maximum(u, v)  # < 1 inside the rectangle
    tear = value_noise(rng, y1 - y0, x1 - x0, max(2.0, r * 0.15), 3)
    inside = np.clip((1.0 - box + (tear - 0.5) * 0.5) / 0.06, 0.0, 1.0)
    patchy = np.clip(0.55 + 0.8 * (value_noise(rng, y1 - y0, x1 - x0, max(3.0, r * 0.3), 2) - 0.3), 0.0, 1.0)
    m = np.asarray(inside * patchy * (0.6 + 0.35 * sev) * c.alpha[y0:y1, x0:x1], np.float32)
    region = img[y0:y1, x0:x1]
    paper = np.asarray((0.8, 0.9, 0.93), np.float32)  # BGR: off-white, a little yellow
    region += m[:, :, None] * (paper - region)
    grime = (value_noise(rng, y1 - y0, x1 - x0, 2.5, 1) > 0.82) * inside
    region *= 1.0 - (grime * (0.15 + 0.2 * sev))[:, :, None]
    gloss = np.clip(1.0 - np.abs(u - v * 0.5 - 0.2) / 0.15, 0, 1) * inside
    region += (gloss * 0.08)[:, :, None]
    return "sticker residue"


def unknown_zones(c: ItemCanvas) -> list[str]:
    """The broad faces of this canvas (at least a fifth of the largest zone) that can carry unlabelled damage."""
    area = {z: int((m > 0.5).sum()) for z, m in c.zones.items()}
    top = max(area.values(), default=0)
    return sorted(z for z, a in area.items() if a >= max(400, top // 5))


def paint_unknown(
    c: ItemCanvas, img: F32, alpha: F32, kind: str, sev: float, rng: np.random.Generator
) -> Painted | None:
    """Draw one of :data:`UNKNOWN` on a random zone of the item (in place); None when nothing showed."""
    zones = unknown_zones(c)
    if not zones:
        return None
    zone = str(rng.choice(zones))
    before = img.copy()
    a_before = alpha.copy()
    if kind == "burn":
        drawn = _burn(c, img, zone, sev, rng)
    elif kind == "sticker_residue":
        drawn = _residue(c, img, zone, sev, rng)
    else:
        raise ValueError(f"unknown kind of unlabelled damage {kind!r}; expected one of {', '.join(UNKNOWN)}")
    return _settle(c, img, alpha, before, a_before, kind, zone, sev, drawn, True)
