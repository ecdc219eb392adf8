"""The item canvas: one product drawn top-down in its own frame, before it is placed on the bench.

Besides colour it carries what the scene and the defect painters need: coverage
(alpha), specular reflectivity (gloss), named zones, the surface of each zone,
anchors (buttons, keys, caps, seals) and the machine-readable codes printed on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from inspector.data.synth.codes import EAN13_MODULES, EAN13_QUIET, draw_ean13, draw_qr, qr_modules
from inspector.data.synth.common import F32, Colour, Points, bevel, mask_poly, paste_grey, rounded_rect, text
from inspector.data.synth.common import text as text_
from inspector.data.synth.materials import GLOSS, texture


@dataclass
class ItemCanvas:
    family: str
    variant: str
    h: int
    w: int
    rng: np.random.Generator
    light: tuple[float, float]  # unit vector towards the light, in canvas coordinates
    unit: float  # a typical item dimension in px (texture and stroke scale)
    rgb: F32 = field(init=False)
    alpha: F32 = field(init=False)
    gloss: F32 = field(init=False)
    zones: dict[str, F32] = field(default_factory=dict)
    surfaces: dict[str, str] = field(default_factory=dict)
    anchors: dict[str, list[Any]] = field(default_factory=dict)
    codes: list[dict[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rgb = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        self.gloss = np.zeros((self.h, self.w), np.float32)

    # ------------------------------------------------------------------ layers

    def mask(self, pts: Points | list[Points]) -> F32:
        m = np.zeros((self.h, self.w), np.float32)
        mask_poly(m, pts)
        return m

    def layer(
        self,
        pts: Points | list[Points] | F32,
        surface: str | None = None,
        colour: Colour | None = None,
        *,
        tex: F32 | None = None,
        gloss: float | None = None,
        opaque: bool = True,
        opacity: float = 1.0,
    ) -> F32:
        """Paint a shape with a surface texture (or a flat colour); returns its coverage mask."""
        m = pts if isinstance(pts, np.ndarray) and pts.ndim == 2 and pts.shape == (self.h, self.w) else None
        if m is None:
            m = self.mask(pts)  # type: ignore[arg-type]
        # Work in the shape's bounding window only: textures of small parts cost next to nothing.
        x, y, w, h = cv2.boundingRect((m > 0).astype(np.uint8))
        if w == 0 or h == 0:
            return np.asarray(m, np.float32)
        win = (slice(y, y + h), slice(x, x + w))
        if tex is None:
            c = colour if colour is not None else (0.5, 0.5, 0.5)
            if surface:
                tex = texture(self.rng, surface, h, w, c, self.unit)
            else:
                tex = np.empty((h, w, 3), np.float32)
                tex[:] = c
        else:
            tex = tex[win]
        a = m[win] * np.float32(opacity)
        rgb_win = self.rgb[win]
        rgb_win += a[:, :, None] * (tex - rgb_win)
        g = gloss if gloss is not None else (GLOSS[surface] if surface else None)
        if g is not None:
            gl = self.gloss[win]
            gl += a * (np.float32(g) - gl)
        if opaque:
            np.maximum(self.alpha[win], m[win], out=self.alpha[win])
        return np.asarray(m, np.float32)

    def shade(self, m: F32, radius: float, strength: float = 1.0) -> None:
        """Raise a shape: light its edges towards the light, darken the others."""
        self.rgb += bevel(m, radius, self.light, strength)[:, :, None]

    def darken(self, m: F32, amount: float) -> None:
        self.rgb *= (1.0 - m * np.float32(amount))[:, :, None]

    def zone(self, name: str, m: F32, surface: str) -> None:
        self.zones[name] = np.asarray(m, np.float32)
        self.surfaces[name] = surface

    def finish(self) -> None:
        np.clip(self.rgb, 0.0, 1.0, out=self.rgb)
        np.clip(self.gloss, 0.0, 1.0, out=self.gloss)
        # Zones partition the item: each pixel of the item belongs to the last zone that claimed it.
        claimed = np.zeros((self.h, self.w), np.float32)
        for name in reversed(list(self.zones)):
            z = np.minimum(self.zones[name], self.alpha) * (1.0 - claimed)
            self.zones[name] = np.asarray(z, np.float32)
            claimed = np.maximum(claimed, (z > 0.5).astype(np.float32))

    # ------------------------------------------------------------------ labels

    def lpn_sticker(self, text: str, zone: str) -> bool:
        """Stick the returns centre's LPN label (a QR code) flat inside ``zone``, if it fits."""
        if zone not in self.zones:
            return False
        name = zone
        inside = (self.zones[name] > 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        for scale in (0.7, 0.55, 0.42):  # a 50 x 25 mm label is most of a phone's width
            sw = self.unit * scale
            sh = sw * 0.5
            ys, xs = np.nonzero(dist >= np.hypot(sw, sh) / 2 + 2)
            if len(xs):
                i = int(self.rng.integers(len(xs)))
                x, y = float(xs[i]) - sw / 2, float(ys[i]) - sh / 2
                m = self.layer(rounded_rect(x, y, x + sw, y + sh, 2.0), "paper", (0.95, 0.95, 0.94))
                self.shade(m, max(1.0, self.unit * 0.006), 0.5)
                pad = max(2.0, sh * 0.08)
                side = sh - 2 * pad
                mod = int(side // qr_modules(text))
                patch = draw_qr(text, max(1, mod))
                if patch.shape[0] > side:
                    s = max(8, int(side))
                    patch = np.asarray(cv2.resize(patch, (s, s), interpolation=cv2.INTER_AREA), np.uint8)
                qx, qy = int(x + pad), int(y + pad)
                ink: Colour = (0.08, 0.08, 0.09)
                paste_grey(self.rgb, patch, qx, qy, ink)
                self.codes.append(
                    {"symbology": "QR", "text": text, "box": [qx, qy, qx + patch.shape[1], qy + patch.shape[0]]}
                )
                tx, th = qx + patch.shape[1] + pad, max(4.0, sh * 0.16)
                text_(self.rgb, "LPN", (tx, y + pad + th), th, ink, max(1, int(th / 6)))
                text_(self.rgb, text[-6:], (tx, y + pad + th * 2.6), th * 0.8, ink)
                self.attrs["lpn"] = text
                return True
        return False

    def label(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        code: str | None = None,
        qr: str | None = None,
        lines: list[str] | None = None,
        paper: Colour = (0.93, 0.94, 0.95),
        zone: str | None = None,
        round_r: float = 2.0,
    ) -> F32:
        """A printed sticker: text lines, an EAN-13 barcode and/or a QR code, recorded in ``codes``."""
        pts = rounded_rect(x, y, x + w, y + h, round_r)
        m = self.layer(pts, "paper", paper)
        self.shade(m, max(1.0, self.unit * 0.006), 0.5)
        pad = max(2.0, w * 0.05)
        cy = y + pad
        ink: Colour = (0.08, 0.08, 0.09)
        for ln in lines or []:
            th = max(4.0, min(h * 0.1, w * 0.07))
            if cy + th * 1.5 > y + h - pad:
                break
            text(self.rgb, ln, (x + pad, cy + th), th, ink)
            cy += th * 1.6
        room_w = w - 2 * pad
        if qr is not None:
            side = min(room_w * (0.5 if code else 1.0), y + h - pad - cy)
            if side >= 12:
                mod = int(side // qr_modules(qr))
                patch = draw_qr(qr, max(1, mod))
                if patch.shape[0] > side:
                    s = max(8, int(side))
                    patch = np.asarray(cv2.resize(patch, (s, s), interpolation=cv2.INTER_AREA), np.uint8)
                qx, qy = int(x + w - pad - patch.shape[1]), int(y + h - pad - patch.shape[0])
                paste_grey(self.rgb, patch, qx, qy, ink)
                self.codes.append(
                    {"symbology": "QR", "text": qr, "box": [qx, qy, qx + patch.shape[1], qy + patch.shape[0]]}
                )
                room_w -= patch.shape[1] + pad
        if code is not None and room_w > 20:
            total = EAN13_MODULES + 2 * EAN13_QUIET
            mod = int(room_w // total)
            bh = max(8.0, min(y + h - pad - cy, room_w * 0.45))
            patch = draw_ean13(code, max(1, mod), int(bh) if mod >= 1 else None, with_digits=mod >= 2)
            if mod < 1:
                patch = np.asarray(cv2.resize(patch, (int(room_w), int(bh)), interpolation=cv2.INTER_AREA), np.uint8)
            if patch.shape[0] > bh + 1:
                patch = np.asarray(cv2.resize(patch, (patch.shape[1], int(bh)), interpolation=cv2.INTER_AREA), np.uint8)
            bx, by = int(x + pad), int(y + h - pad - patch.shape[0])
            paste_grey(self.rgb, patch, bx, by, ink)
            self.codes.append(
                {"symbology": "EAN_13", "text": code, "box": [bx, by, bx + patch.shape[1], by + patch.shape[0]]}
            )
        if zone is not None:
            self.zone(zone, m, "paper")
        return m
