"""Surface looks of returned goods: plastic, glass, brushed metal, fabric, cardboard, leather, rubber, paper."""

from __future__ import annotations

import numpy as np

from inspector.data.synth.common import F32, Colour, grain, streaks, value_noise

SURFACES = ("glass", "glossy", "matte", "metal", "fabric", "cardboard", "leather", "rubber", "paper")


def texture(rng: np.random.Generator, kind: str, h: int, w: int, base: Colour, unit: float = 100.0) -> F32:
    """An h x w BGR texture of ``kind`` around the colour ``base``; ``unit`` is the item size in px."""
    b = np.asarray(base, np.float32)
    seed = int(rng.integers(1 << 30))
    if kind == "glass":
        n = value_noise(rng, h, w, unit * 0.8, 2)
        tex = b + (n[:, :, None] - 0.5) * 0.03
    elif kind == "glossy":
        n = value_noise(rng, h, w, unit * 0.5, 2)
        tex = b * (1.0 + (n[:, :, None] - 0.5) * 0.05) + grain(seed, h, w, 0.004)[:, :, None]
    elif kind == "matte":
        n = value_noise(rng, h, w, unit * 0.4, 3)
        tex = b * (1.0 + (n[:, :, None] - 0.5) * 0.07) + grain(seed, h, w, 0.012)[:, :, None]
    elif kind == "metal":
        s = streaks(rng, h, w, max(9, int(unit * 0.35)), horizontal=bool(rng.random() < 0.7))
        n = value_noise(rng, h, w, unit * 0.6, 2)
        tex = b * (1.0 + (n[:, :, None] - 0.5) * 0.08) + s[:, :, None] * 0.018
    elif kind == "fabric":
        period = float(rng.uniform(2.2, 3.6))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        weave = np.sin(xs * (2 * np.pi / period)) * np.sin(ys * (2 * np.pi / period))
        n = value_noise(rng, h, w, unit * 0.15, 3)
        folds = value_noise(rng, h, w, unit * 0.5, 2)
        lum = 1.0 + weave * 0.05 + (n - 0.5) * 0.12 + (folds - 0.5) * 0.22
        tex = b * lum[:, :, None] + grain(seed, h, w, 0.01)[:, :, None]
    elif kind == "cardboard":
        n = value_noise(rng, h, w, unit * 0.3, 4)
        fib = streaks(rng, h, w, 7, horizontal=bool(rng.random() < 0.5))
        speck = (grain(seed, h, w, 1.0) > 2.6).astype(np.float32)
        lum = 1.0 + (n - 0.5) * 0.14 + fib * 0.015 - speck * 0.12
        tex = b * lum[:, :, None]
    elif kind == "leather":
        cells = value_noise(rng, h, w, max(3.0, unit * 0.02), 2)
        n = value_noise(rng, h, w, unit * 0.4, 2)
        lum = 1.0 + (cells - 0.5) * 0.16 + (n - 0.5) * 0.1
        tex = b * lum[:, :, None]
    elif kind == "rubber":
        n = value_noise(rng, h, w, unit * 0.2, 3)
        tex = b * (1.0 + (n[:, :, None] - 0.5) * 0.12) + grain(seed, h, w, 0.02)[:, :, None]
    elif kind == "paper":
        n = value_noise(rng, h, w, unit * 0.3, 3)
        tex = b * (1.0 + (n[:, :, None] - 0.5) * 0.04) + grain(seed, h, w, 0.008)[:, :, None]
    else:
        raise ValueError(f"unknown surface {kind!r}; expected one of {', '.join(SURFACES)}")
    return np.asarray(np.clip(tex, 0.0, 1.0), np.float32)


# How shiny each surface is (specular reflectivity used with the bench's light reflections).
GLOSS = {
    "glass": 0.95,
    "glossy": 0.6,
    "matte": 0.12,
    "metal": 0.4,
    "fabric": 0.0,
    "cardboard": 0.03,
    "leather": 0.3,
    "rubber": 0.05,
    "paper": 0.05,
}
