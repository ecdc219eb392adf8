"""The bench: a mat under a camera and a lamp, with a returned item placed on it.

A :class:`Bench` is one physical station, fixed by its seed: the mat, the light,
the lamp's reflections and the camera's pose. Each :meth:`Bench.sample` puts one
item (or none) on it, with defects, distractors, shadows and the exposure's own
blur and noise, and returns the picture, its defect-free twin and the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from inspector.data.synth import camera as cam
from inspector.data.synth.canvas import ItemCanvas
from inspector.data.synth.codes import draw_ean13, draw_qr, qr_modules, random_ean13, random_lpn, random_rma
from inspector.data.synth.common import (
    F32,
    Colour,
    Points,
    bevel,
    ellipse_pts,
    fill_poly,
    jitter_colour,
    lerp,
    linear_ramp,
    mask_poly,
    paste_grey,
    polyline,
    radial,
    rgb,
    smooth_closed,
    streaks,
    text,
    value_noise,
)
from inspector.data.synth.defects import CLASS_WEIGHT, UNKNOWN, Painted, options, paint, paint_unknown
from inspector.data.synth.families import RENDERERS
from inspector.data.synth.visibility import scene_visibility
from inspector.items import FAMILIES
from inspector.labelmap import ITEM, default_labelmap

SIDECAR_VERSION = 1
DEFECT_FREE_P = 0.4  # share of items drawn without defects: a bench mostly sees good items (at least 30%)
EMPTY_P = 0.06  # share of dataset images with no item on the bench
LPN_STICKER_P = 0.3  # items that already carry the returns centre's LPN sticker (boxes have their own label)
VISIBLE_CHANGE = 0.08  # a defect must change the lit picture by this much (0..1) ...
MIN_VISIBLE_PX = 16  # ... on at least this many pixels to be labelled
MIN_VISIBILITY = 40.0  # a drawn defect's Rose number before the camera, at 1280x960 (datasets/synthetic.md)
_BENCH, _ITEM, _UNKNOWN = 0xBE4C, 0x17E3, 0x0DD


@dataclass(frozen=True)
class DefectMix:
    """How often items carry defects, and how many: the test sets keep the default; a training render
    may ask for more defects per picture, so a CPU-bound training run sees more of them per second."""

    defect_free_p: float = DEFECT_FREE_P
    counts: tuple[int, ...] = (1, 1, 1, 2, 2, 3)  # defects on a damaged item, drawn uniformly from this list

    def __post_init__(self) -> None:
        if not 0.0 <= self.defect_free_p <= 1.0:
            raise ValueError(f"defect-free share must be within 0..1, got {self.defect_free_p}")
        if not self.counts or min(self.counts) < 1 or max(self.counts) > 8:
            raise ValueError(f"defects per item must be a list of counts from 1 to 8, got {list(self.counts)}")

    @classmethod
    def parse(cls, defect_free_p: float, counts: str) -> DefectMix:
        """From the command line's form: a share and a comma-separated list (``1,2,2,3``)."""
        return cls(defect_free_p, tuple(int(c) for c in counts.split(",") if c.strip()))


DEFAULT_MIX = DefectMix()


@dataclass(frozen=True)
class Sample:
    """One synthetic camera picture and its ground truth."""

    image: npt.NDArray[np.uint8]  # BGR uint8 HxWx3, the final camera image
    clean: npt.NDArray[np.uint8]  # same scene and camera, no defects drawn
    xyxy: npt.NDArray[np.float32]  # (N, 4) pixel boxes (item + defects) after all transforms
    class_ids: npt.NDArray[np.int64]  # (N,) ids in the station labelmap
    meta: dict[str, Any]  # the sidecar (family, SKU attributes, item box, defects, codes, empty flag)


@dataclass
class _Render:
    image: npt.NDArray[np.uint8]
    clean: npt.NDArray[np.uint8] | None
    xyxy: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int64]
    meta: dict[str, Any]


@dataclass(frozen=True)
class _Item:
    """The item drawn on its canvas, and the angle it will lie at."""

    family: str
    angle: float
    canvas: ItemCanvas


@dataclass
class _Damage:
    """The item's colour and coverage with its defects painted in (the canvas keeps the intact item)."""

    rgb: F32
    alpha: F32
    painted: list[Painted] = field(default_factory=list)
    unknown: list[Painted] = field(default_factory=list)  # damage no detector is trained on: never labelled

    @classmethod
    def of(cls, canvas: ItemCanvas) -> _Damage:
        return cls(canvas.rgb.copy(), canvas.alpha.copy())


@dataclass
class _Layout:
    """What lies on the bench in scene pixels before the camera: labelled boxes, codes, taken places, gloss."""

    gloss: F32
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    outlines: list[Points] = field(default_factory=list)
    code_boxes: list[list[float]] = field(default_factory=list)
    code_meta: list[dict[str, Any]] = field(default_factory=list)
    unknown_outlines: list[Points] = field(default_factory=list)
    occupied: list[tuple[float, float, float, float]] = field(default_factory=list)


def _pick(rng: np.random.Generator, options_: tuple[str, ...] | list[str]) -> str:
    return str(options_[int(rng.integers(len(options_)))])


# ------------------------------------------------------------------------------------- SKU

_PRICE = {
    "phone": (150, 1300),
    "tablet": (150, 1100),
    "laptop": (350, 2600),
    "boxed": (15, 250),
    "bottle": (4, 40),
    "shoe": (30, 220),
    "garment": (8, 120),
    "appliance": (25, 320),
}
_WEIGHT = {
    "phone": (0.15, 0.25),
    "tablet": (0.3, 0.7),
    "laptop": (1.1, 2.6),
    "boxed": (0.2, 3.0),
    "bottle": (0.15, 0.6),
    "shoe": (0.6, 1.3),
    "garment": (0.15, 0.6),
    "appliance": (0.6, 2.5),
}
_BATTERY_PRODUCTS = {"Wireless Earbuds", "Action Camera", "Power Bank 20000", "Bluetooth Headset", "Fitness Band"}


def sku_attributes(c: ItemCanvas, rng: np.random.Generator) -> dict[str, Any]:
    """SKU-like catalogue attributes of the drawn item (the fields of ``inspector.items.Sku``)."""
    fam = c.family
    lo, hi = _PRICE[fam]
    price = float(np.round(np.exp(rng.uniform(np.log(lo), np.log(hi))), 0)) - 0.01
    names = {
        "phone": "Smartphone",
        "tablet": "Tablet",
        "laptop": "Laptop",
        "boxed": str(c.attrs.get("product", "Boxed retail item")),
        "bottle": str(c.attrs.get("product", "Bottle")),
        "shoe": {"sneaker": "Running shoe", "leather": "Leather shoe", "canvas": "Canvas sneaker"}.get(
            c.variant, "Shoe"
        ),
        "garment": {"tshirt": "T-shirt", "shirt": "Shirt"}.get(c.variant, "Garment"),
        "appliance": {"toaster": "Toaster", "kettle": "Kettle", "speaker": "Bluetooth speaker"}.get(
            c.variant, "Appliance"
        ),
    }
    if fam == "boxed" and c.variant == "shipper":
        names["boxed"] = "Shipped parcel"
    has_battery = fam in ("phone", "tablet", "laptop") or (fam == "appliance" and c.variant == "speaker")
    if fam == "boxed":
        has_battery = str(c.attrs.get("product", "")) in _BATTERY_PRODUCTS
    return {
        "sku": f"SYN-{fam[:3].upper()}-{int(rng.integers(0, 100000)):05d}",
        "name": f"{c.attrs.get('brand', '')} {names[fam]}".strip(),
        "category": fam,
        "price_new": max(0.99, price),
        "hygiene": bool(fam == "bottle" and c.attrs.get("personal_care", False)),
        "has_battery": bool(has_battery),
        "recalled": False,
        "personalised": False,
        "vendor_return_days": int(rng.choice([0, 0, 30, 60, 90])),
        "weight_kg": round(float(rng.uniform(*_WEIGHT[fam])), 2),
    }


# ------------------------------------------------------------------------------------ bench


@dataclass(frozen=True)
class _Light:
    direction: tuple[float, float]  # unit vector towards the lamp, image coordinates
    shadow_offset: tuple[float, float]
    shadow_blur: float
    shadow_strength: float
    specular: float
    tint: Colour


SLIP_SHARE = 0.45  # share of rendered items lying beside their return slip


class Bench:
    """One physical bench: mat, lighting and camera pose fixed by its seed (a station's camera)."""

    def __init__(self, seed: int = 0, size: tuple[int, int] = (640, 480)) -> None:
        w, h = int(size[0]), int(size[1])
        if w < 64 or h < 48:
            raise ValueError(f"bench size {w}x{h} is too small (at least 64x48)")
        self.seed = int(seed)
        self.size = (w, h)
        # Share of items that come with their return slip: the datasets keep 0.45; a live demo may ask for more.
        self.slip_share = SLIP_SHARE
        self.w, self.h = w, h
        self.unit = float(min(w, h))
        rng = np.random.default_rng([_BENCH, self.seed])
        self._rng_seed = int(rng.integers(1 << 62))
        self.mat_kind = _pick(rng, ("cutting mat", "esd mat", "wood", "laminate", "rubber"))
        self.zoom = float(rng.uniform(0.9, 1.08))
        ang = float(rng.uniform(0, 2 * np.pi))
        elev = float(rng.uniform(0.3, 1.0))  # low lamps cast long shadows
        d = (float(np.cos(ang)), float(np.sin(ang)))
        self.light = _Light(
            direction=d,
            shadow_offset=(-d[0] * self.unit * 0.035 * elev, -d[1] * self.unit * 0.035 * elev),
            shadow_blur=self.unit * float(rng.uniform(0.008, 0.03)),
            shadow_strength=float(rng.uniform(0.3, 0.55)),
            specular=float(rng.uniform(0.35, 0.7)),
            tint=(float(rng.uniform(0.92, 1.06)), 1.0, float(rng.uniform(0.94, 1.08))),
        )
        self._illum_params = (
            float(rng.uniform(0.85, 1.05)),  # base level
            float(rng.uniform(0.08, 0.3)),  # gradient strength
            float(np.degrees(ang)),  # gradient towards the lamp
            float(rng.uniform(0.2, 0.8)) * w,
            float(rng.uniform(0.2, 0.8)) * h,  # hot spot centre
            float(rng.uniform(0.25, 0.6)) * self.unit,  # hot spot radius
            float(rng.uniform(0.05, 0.3)),  # hot spot strength
            float(rng.uniform(0.05, 0.25)),  # vignetting
        )
        # camera pose: perspective and rotation, zoomed in so the frame never shows an edge
        self._pose = self._camera_pose(rng)
        self._camera_base = (
            float(rng.uniform(0.0, 0.9)),  # defocus
            (float(rng.uniform(0.94, 1.06)), 1.0, float(rng.uniform(0.94, 1.06))),  # white balance R, B
            float(rng.uniform(0.92, 1.06)),  # brightness
            float(rng.uniform(0.9, 1.12)),  # contrast
            float(rng.uniform(0.85, 1.15)),  # saturation
            float(rng.uniform(0.004, 0.012)),  # read noise
            float(rng.uniform(0.01, 0.035)),  # shot noise
            int(rng.integers(60, 95)),  # JPEG quality
        )

    def __repr__(self) -> str:
        return f"Bench(seed={self.seed}, size={self.size}, mat={self.mat_kind!r})"

    # ----------------------------------------------------------------- fixed parts

    def _camera_pose(self, rng: np.random.Generator) -> tuple[list[list[float]], list[list[float]], float]:
        w, h = self.w, self.h
        start = [[0.0, 0.0], [w - 1.0, 0.0], [w - 1.0, h - 1.0], [0.0, h - 1.0]]
        rot = float(rng.uniform(-2.5, 2.5))
        zoom = float(rng.uniform(1.04, 1.08))
        jit = rng.uniform(0.0, 0.025, (4, 2)) * (w, h)
        for _ in range(20):
            a = np.deg2rad(rot)
            rmat = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            centre = np.array([(w - 1) / 2, (h - 1) / 2])
            corners = (np.asarray(start) - centre) * zoom
            sign = np.sign(corners)
            corners = corners + sign * jit
            end = corners @ rmat.T + centre
            # the output frame must lie inside the warped scene, or a black corner shows
            if _quad_contains(end, np.asarray(start)):
                return start, end.tolist(), rot
            jit *= 0.7
            rot *= 0.7
            zoom += 0.01
        return start, [[-w * 0.1, -h * 0.1], [w * 1.1, -h * 0.1], [w * 1.1, h * 1.1], [-w * 0.1, h * 1.1]], 0.0

    @cached_property
    def mat(self) -> F32:
        """The empty bench surface (before lighting), BGR float."""
        rng = np.random.default_rng([_BENCH, self.seed, 1])
        return _mat(rng, self.mat_kind, self.h, self.w, self.unit)

    @cached_property
    def illumination(self) -> F32:
        """Multiplicative light falling on the bench (HxWx3): gradient, hot spot, vignetting, colour."""
        base, grad, ang, hx, hy, hr, hs, vig = self._illum_params
        h, w = self.h, self.w
        lum = base * (1.0 + grad * linear_ramp(h, w, ang)) + hs * radial(h, w, hx, hy, hr)
        lum *= 1.0 - vig * (1.0 - radial(h, w, w / 2, h / 2, 0.75 * max(w, h)))
        tint = np.asarray(self.light.tint, np.float32)
        return np.asarray(lum[:, :, None] * tint, np.float32)

    @cached_property
    def reflections(self) -> F32:
        """What a mirror-like surface on the bench would reflect: the lamp's tubes, soft (HxW)."""
        rng = np.random.default_rng([_BENCH, self.seed, 2])
        h, w = self.h, self.w
        out: F32 = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 3))):
            cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
            length, width = rng.uniform(0.5, 1.2) * max(w, h), rng.uniform(0.04, 0.12) * self.unit
            a = rng.uniform(0, 180)
            pts = cv2.boxPoints(((cx, cy), (length, width), a))
            mask_poly(out, np.asarray(pts, np.float64), float(rng.uniform(0.5, 1.0)))
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), self.unit * 0.02), np.float32)
        out += 0.15 * (0.5 + 0.5 * linear_ramp(h, w, float(rng.uniform(0, 360))))
        return np.asarray(out, np.float32)

    def camera(self, rng: np.random.Generator | None, *, noise_seed: int) -> cam.CameraParams:
        """The camera for one exposure: the bench's pose, with this exposure's focus, motion and noise."""
        defocus, gains, bright, contrast, sat, read, shot, q = self._camera_base
        motion, motion_angle = 0.0, 0.0
        if rng is not None:
            defocus = max(0.0, defocus + float(rng.uniform(-0.2, 0.4)))
            if rng.random() < 0.12:
                defocus = float(rng.uniform(1.2, 2.0))
            if rng.random() < 0.12:
                motion, motion_angle = float(rng.uniform(3, 9)), float(rng.uniform(0, 180))
            bright *= float(rng.uniform(0.96, 1.04))
            q = int(np.clip(q + rng.integers(-5, 6), 40, 98))
        start, end, _ = self._pose
        scale = self.unit / 480.0  # optics scale with the picture
        return cam.CameraParams(
            startpoints=start,
            endpoints=end,
            defocus=defocus * scale,
            motion=motion * scale,
            motion_angle=motion_angle,
            gains=gains,
            brightness=bright,
            contrast=contrast,
            saturation=sat,
            read_noise=read,
            shot_noise=shot,
            jpeg_quality=q,
            noise_seed=noise_seed,
        )

    # ------------------------------------------------------------------------ pictures

    def empty(self) -> npt.NDArray[np.uint8]:
        """The empty bench (BGR uint8) as this camera sees it; the same every call."""
        scene = self.mat * self.illumination
        params = self.camera(None, noise_seed=self._rng_seed & 0x7FFFFFFF)
        images, _ = cam.apply(params, [scene], np.zeros((0, 4), np.float32))
        return images[0]

    def sample(
        self,
        item_seed: int,
        *,
        family: str | None = None,
        defect_free: bool | None = None,
        empty: bool = False,
    ) -> Sample:
        """One picture of an item on this bench; ``clean`` is the same picture without the defects."""
        r = self.render(item_seed, family=family, defect_free=defect_free, empty=empty, with_clean=True)
        assert r.clean is not None
        return Sample(image=r.image, clean=r.clean, xyxy=r.xyxy, class_ids=r.class_ids, meta=r.meta)

    def render(
        self,
        item_seed: int,
        *,
        family: str | None = None,
        defect_free: bool | None = None,
        empty: bool = False,
        with_clean: bool = False,
        n_defects: int | None = None,
        classes: tuple[str, ...] | None = None,
        mix: DefectMix = DEFAULT_MIX,
        unknown: tuple[str, ...] = (),
        _skip: frozenset[int] = frozenset(),
    ) -> _Render:
        """Render one picture; ``with_clean=False`` skips the defect-free twin (dataset writing).

        The steps draw from one random stream in a fixed order (item, defects, placement,
        distractors, SKU, glove, exposure), so a seed always gives the same picture.
        ``unknown`` adds damage of kinds no detector is trained on (:data:`defects.UNKNOWN`), drawn
        from a stream of its own, so the picture is otherwise the one the seed gives without it;
        it is never labelled, and the sidecar lists it under ``unknown`` (only when asked for).
        """
        if family is not None and family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
        bad = [k for k in unknown if k not in UNKNOWN]
        if bad:
            raise ValueError(f"unknown kind of unlabelled damage {bad[0]!r}; expected one of {', '.join(UNKNOWN)}")
        rng = np.random.default_rng([_ITEM, self.seed, int(item_seed)])
        meta = self._blank_meta(item_seed, empty)
        scene = self.mat.copy()
        layout = _Layout(gloss=np.zeros((self.h, self.w), np.float32))
        clean_scene: F32 | None = None
        painted: list[Painted] = []
        unknown_painted: list[Painted] = []
        seen: list[float | None] = []
        if empty:
            meta["distractors"] += self._distractors_under(scene, rng, layout)
            if with_clean:
                clean_scene = scene.copy()
        else:
            item = self._draw_item(rng, family)
            damaged = _damage(item.canvas, rng, defect_free, n_defects, classes, mix, _skip)
            if unknown:
                urng = np.random.default_rng([_UNKNOWN, self.seed, int(item_seed)])
                for kind in unknown:
                    sev = float(np.clip(urng.beta(2.0, 2.0), 0.15, 1.0))
                    p = paint_unknown(item.canvas, damaged.rgb, damaged.alpha, kind, sev, urng)
                    if p is not None:
                        damaged.unknown.append(p)
            m_item, twin = self._lay_item(scene, item, damaged, layout, rng, meta)
            if with_clean:
                clean_scene = twin
            seen = self._visibility(damaged.painted, m_item, scene, twin, layout.gloss)
            unseen = [k for k, v in enumerate(seen) if v is None or v < MIN_VISIBILITY]
            if unseen and len(_skip) < 8:
                # glare hides it, or no one could see it: render again without it, so no faint
                # unlabelled defect remains
                drawn = [i for i in range(len(damaged.painted) + len(_skip)) if i not in _skip]
                more = frozenset(drawn[k] for k in unseen)
                return self.render(
                    item_seed,
                    family=family,
                    defect_free=defect_free,
                    empty=empty,
                    with_clean=with_clean,
                    n_defects=n_defects,
                    classes=classes,
                    mix=mix,
                    unknown=unknown,
                    _skip=_skip | more,
                )
            _item_labels(m_item, item.canvas, damaged, layout)
            layout.unknown_outlines = [_hull(_to_scene(m_item, p.hull, pixel=False)) for p in damaged.unknown]
            unknown_painted = damaged.unknown
            meta.update(
                family=item.family,
                category=item.family,
                variant=item.canvas.variant,
                sku=sku_attributes(item.canvas, rng),
                item={"angle": round(item.angle, 2), "attributes": _plain(item.canvas.attrs)},
            )
            painted = damaged.painted
        scenes = [scene] + ([clean_scene] if clean_scene is not None else [])
        if not empty and rng.random() < 0.15:
            self._add_glove(scenes, rng, layout, meta)
        images, out_boxes, params = self._expose(scenes, layout, rng)
        lab_boxes, lab_ids = _truth(meta, layout, out_boxes, painted, seen, empty)
        if unknown:
            n_known = len(layout.boxes) + len(layout.code_boxes)
            meta["unknown"] = [
                {
                    "class": p.cls,
                    "zone": p.zone,
                    "severity": round(p.severity, 3),
                    "box": [round(float(v), 2) for v in b],
                    "kind": p.kind,
                }
                for p, b in zip(unknown_painted, out_boxes[n_known:], strict=True)
            ]
        meta["camera"] = {
            "defocus": round(params.defocus, 3),
            "motion_blur": round(params.motion, 3),
            "jpeg_quality": params.jpeg_quality,
        }
        return _Render(
            image=images[0],
            clean=images[1] if clean_scene is not None else None,
            xyxy=lab_boxes,
            class_ids=lab_ids,
            meta=meta,
        )

    # ------------------------------------------------------------- steps of a render

    def _blank_meta(self, item_seed: int, empty: bool) -> dict[str, Any]:
        """The sidecar before anything is drawn: the bench, the seed, and empty slots."""
        return {
            "version": SIDECAR_VERSION,
            "bench_seed": self.seed,
            "item_seed": int(item_seed),
            "size": [self.w, self.h],
            "empty": bool(empty),
            "family": None,
            "category": None,
            "variant": None,
            "sku": None,
            "item": None,
            "defects": [],
            "codes": [],
            "distractors": [],
            "bench": {"mat": self.mat_kind},
        }

    def _draw_item(self, rng: np.random.Generator, family: str | None) -> _Item:
        """The item on its own canvas, lit from where the lamp stands once it lies at its angle."""
        fam = family or _pick(rng, FAMILIES)
        angle = float(rng.choice([0.0, 90.0, 180.0, 270.0]) + np.clip(rng.normal(0, 12), -30, 30))
        a = np.deg2rad(angle)
        # cv2's rotation turns image content counter-clockwise on screen; bring the lamp into the item's frame
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # item -> scene (y down)
        lc = rot.T @ np.asarray(self.light.direction)
        canvas = RENDERERS[fam](rng, self.unit * self.zoom, (float(lc[0]), float(lc[1])), None)
        flat = {"phone": "back", "tablet": "back", "laptop": "lid", "garment": "front"}.get(fam)
        if flat and rng.random() < LPN_STICKER_P:
            canvas.lpn_sticker(random_lpn(rng), flat)
        return _Item(family=fam, angle=angle, canvas=canvas)

    def _lay_item(
        self, scene: F32, item: _Item, damaged: _Damage, layout: _Layout, rng: np.random.Generator, meta: dict[str, Any]
    ) -> tuple[F32, F32]:
        """Place the item, the distractors under or beside it, and composite both into ``scene``.

        Returns the item's canvas -> scene map and the defect-free twin of ``scene``; the item's
        gloss goes into ``layout``.
        """
        m, win = self._placement(item.canvas, item.angle, rng)
        layout.occupied.append(win)
        # distractors go under or beside the item, never over it
        meta["distractors"] += self._distractors_under(scene, rng, layout)
        layers = _warp_item(item.canvas, damaged.rgb, damaged.alpha, m, win)
        gl = layers["gloss"] * layers["alpha_clean"]
        x0, y0, x1, y1 = (int(v) for v in win)
        layout.gloss[y0:y1, x0:x1] = np.maximum(layout.gloss[y0:y1, x0:x1], gl)
        twin = scene.copy()
        self._composite(twin, layers["rgb_clean"], layers["alpha_clean"], win)
        self._composite(scene, layers["rgb"], layers["alpha"], win)
        return m, twin

    def _add_glove(self, scenes: list[F32], rng: np.random.Generator, layout: _Layout, meta: dict[str, Any]) -> None:
        """A gloved hand reaching in at the frame's edge, where nothing lies (drawn into every scene)."""
        hand = self._glove(rng, layout.occupied)
        if hand is not None:
            for sc in scenes:
                _draw_glove(sc, hand, self.light, self.unit)
            meta["distractors"].append("gloved hand")

    def _expose(
        self, scenes: list[F32], layout: _Layout, rng: np.random.Generator
    ) -> tuple[list[npt.NDArray[np.uint8]], npt.NDArray[np.float32], cam.CameraParams]:
        """Light the scenes (lamp, reflections on glossy parts) and take them through this exposure's camera."""
        spec = self.reflections * layout.gloss * np.float32(self.light.specular)
        lit = [np.asarray(s * self.illumination + spec[:, :, None], np.float32) for s in scenes]
        params = self.camera(rng, noise_seed=int(rng.integers(1 << 31)))
        unknown_boxes = [_box_of(q) for q in layout.unknown_outlines]
        all_boxes = np.asarray(layout.boxes + layout.code_boxes + unknown_boxes, np.float32).reshape(-1, 4)
        code_outlines = [cm.pop("outline", None) for cm in layout.code_meta]
        all_outlines = (
            layout.outlines
            + [
                o if o is not None else np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]])
                for o, b in zip(code_outlines, layout.code_boxes, strict=True)
            ]
            + layout.unknown_outlines
        )
        images, out_boxes = cam.apply(params, lit, all_boxes, all_outlines)
        return images, out_boxes, params

    # ---------------------------------------------------------------------- helpers

    def _placement(
        self, c: ItemCanvas, angle: float, rng: np.random.Generator
    ) -> tuple[F32, tuple[float, float, float, float]]:
        """Where the item lies: an affine map canvas -> scene, and the scene window it covers."""
        margin = 0.07
        corners = np.array([[0, 0], [c.w, 0], [c.w, c.h], [0, c.h]], np.float64)
        m = cv2.getRotationMatrix2D((c.w / 2, c.h / 2), angle, 1.0)
        q = corners @ m[:, :2].T
        bw, bh = np.ptp(q[:, 0]), np.ptp(q[:, 1])
        avail_w, avail_h = self.w * (1 - 2 * margin), self.h * (1 - 2 * margin)
        s = float(min(1.0, avail_w / bw, avail_h / bh))
        bw, bh = bw * s, bh * s
        lo_x, lo_y = self.w * margin + bw / 2, self.h * margin + bh / 2
        cx = float(rng.uniform(lo_x, max(lo_x, self.w * (1 - margin) - bw / 2)))
        cy = float(rng.uniform(lo_y, max(lo_y, self.h * (1 - margin) - bh / 2)))
        m = cv2.getRotationMatrix2D((c.w / 2, c.h / 2), angle, s)
        m[0, 2] += cx - c.w / 2
        m[1, 2] += cy - c.h / 2
        return np.asarray(m, np.float32), (
            max(0.0, cx - bw / 2),
            max(0.0, cy - bh / 2),
            min(float(self.w), cx + bw / 2),
            min(float(self.h), cy + bh / 2),
        )

    def _visibility(self, painted: list[Painted], m: F32, scene: F32, twin: F32, gloss: F32) -> list[float | None]:
        """Each defect's Rose number once lit, at the station camera's frame; None where glare burns it out.

        Taken on the lit scene with the bench's sensor noise, before the camera, so that dropping a
        defect costs no exposure. The exposure's own blur is not known yet, so this number only
        follows the one measured after the camera (``visibility.defect_visibility``, about twice
        as large, since JPEG smooths the noise); :data:`MIN_VISIBILITY` was set against that one.
        """
        _, _, _, _, _, read, shot, _ = self._camera_base
        out: list[float | None] = []
        for p in painted:
            q = _to_scene(m, p.hull, pixel=False)
            x0, y0 = max(0, int(q[:, 0].min())), max(0, int(q[:, 1].min()))
            x1, y1 = min(self.w, int(np.ceil(q[:, 0].max()))), min(self.h, int(np.ceil(q[:, 1].max())))
            value: float | None = None
            if x1 > x0 and y1 > y0:
                win = (slice(y0, y1), slice(x0, x1))
                light = self.illumination[win]
                spec = (self.reflections[win] * gloss[win] * np.float32(self.light.specular))[:, :, None]
                a = np.clip(scene[win] * light + spec, 0.0, 1.0)
                b = np.clip(twin[win] * light + spec, 0.0, 1.0)
                if int((np.abs(a - b).max(axis=2) > VISIBLE_CHANGE).sum()) >= MIN_VISIBLE_PX:
                    value = scene_visibility(a, b, read, shot, self.unit)
            out.append(value)
        return out

    def _composite(self, scene: F32, rgb_: F32, alpha: F32, win: tuple[float, float, float, float]) -> None:
        """Shadow, contact shadow and the item itself, into the scene window (in place)."""
        x0, y0, x1, y1 = (int(v) for v in win)
        pad = int(self.light.shadow_blur * 3 + max(abs(v) for v in self.light.shadow_offset) + 3)
        X0, Y0 = max(0, x0 - pad), max(0, y0 - pad)
        X1, Y1 = min(self.w, x1 + pad), min(self.h, y1 + pad)
        a = np.zeros((Y1 - Y0, X1 - X0), np.float32)
        a[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0] = alpha
        dx, dy = self.light.shadow_offset
        shifted = cv2.warpAffine(a, np.array([[1, 0, dx], [0, 1, dy]], np.float32), (a.shape[1], a.shape[0]))
        shadow = cv2.GaussianBlur(shifted, (0, 0), max(0.8, self.light.shadow_blur))
        contact = cv2.GaussianBlur(a, (0, 0), max(1.0, self.unit * 0.004))
        region = scene[Y0:Y1, X0:X1]
        region *= (1.0 - self.light.shadow_strength * shadow - 0.25 * contact)[:, :, None]
        inner = region[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0]
        inner += alpha[:, :, None] * (rgb_ - inner)

    def _free_spot(
        self,
        rng: np.random.Generator,
        bw: float,
        bh: float,
        occupied: list[tuple[float, float, float, float]],
        inside: bool = False,
    ) -> tuple[float, float] | None:
        """A centre where a bw x bh thing overlaps nothing placed yet (``inside``: wholly in the frame)."""
        mx, my = (bw * 0.5 + self.w * 0.06, bh * 0.5 + self.h * 0.06) if inside else (bw * 0.3, bh * 0.3)
        if mx * 2 >= self.w or my * 2 >= self.h:
            return None
        for _ in range(30):
            cx = float(rng.uniform(mx, self.w - mx))
            cy = float(rng.uniform(my, self.h - my))
            box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            if all(_overlap(box, o) < 0.02 for o in occupied):
                return cx, cy
        return None

    def _distractors_under(self, scene: F32, rng: np.random.Generator, layout: _Layout) -> list[str]:
        """The packing slip and scraps of tape, where nothing lies yet; the slip's codes go into ``layout``."""
        occupied = layout.occupied
        found: list[str] = []
        u = self.unit
        if rng.random() < self.slip_share:  # the packing slip that came with the return
            sw, sh = u * rng.uniform(0.36, 0.46), u * rng.uniform(0.42, 0.54)
            spot = self._free_spot(rng, sw * 1.15, sh * 1.15, occupied, inside=True)
            if spot is not None:
                box, codes = _packing_slip(scene, rng, spot, sw, sh, self.light, u)
                occupied.append(box)
                for cb, cm in codes:
                    layout.code_boxes.append(cb)
                    layout.code_meta.append(cm)
                found.append("packing slip")
        for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):  # scraps of tape
            tw, th = u * rng.uniform(0.08, 0.22), u * rng.uniform(0.025, 0.045)
            spot = self._free_spot(rng, tw, tw, occupied)
            if spot is None:
                continue
            a = float(rng.uniform(0, 180))
            pts = np.asarray(cv2.boxPoints((spot, (tw, th), a)), np.float64)
            # torn ends are ragged
            pts[[0, 3]] += rng.normal(0, th * 0.08, (2, 2))
            col = rgb(_pick(rng, ("#c9a46a", "#e8e4da", "#4a8fd0", "#e0c060")))
            fill_poly(scene, pts, col, 0.6)
            polyline(scene, pts, lerp(col, (0, 0, 0), 0.3), 1.0, 0.35, closed=True)
            found.append("tape")
        return found

    def _glove(
        self, rng: np.random.Generator, occupied: list[tuple[float, float, float, float]]
    ) -> dict[str, Any] | None:
        u = self.unit
        for _ in range(10):
            side = int(rng.integers(4))
            size = u * rng.uniform(0.22, 0.32)
            along = float(rng.uniform(0.15, 0.85))
            if side == 0:
                cx, cy, ang = along * self.w, size * 0.35, 90.0
            elif side == 1:
                cx, cy, ang = self.w - size * 0.35, along * self.h, 180.0
            elif side == 2:
                cx, cy, ang = along * self.w, self.h - size * 0.35, 270.0
            else:
                cx, cy, ang = size * 0.35, along * self.h, 0.0
            ang += float(rng.normal(0, 15))
            box = (cx - size, cy - size, cx + size, cy + size)
            if all(_overlap(box, o) < 0.01 for o in occupied):
                colour = rgb(_pick(rng, ("#3d6fd1", "#5b4bb7", "#1f1f1f", "#3da0c8")))
                return {
                    "cx": cx,
                    "cy": cy,
                    "angle": ang,
                    "size": size,
                    "colour": colour,
                    "seed": int(rng.integers(1 << 31)),
                }
        return None


# ------------------------------------------------------------------------------ functions


def _quad_contains(quad: Points, pts: Points) -> bool:
    contour = quad.astype(np.float32).reshape(-1, 1, 2)
    return all(cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in pts)


def _mask_hull(mask: npt.NDArray[np.bool_]) -> Points:
    """Convex hull (pixel centres) of a mask's pixels, from its outer contours (quick)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 2), np.float64)
    return _hull(np.concatenate([c.reshape(-1, 2) for c in contours]))


def _hull(pts: npt.ArrayLike) -> Points:
    """The convex hull of a point set (fewer points to carry through the camera)."""
    h = cv2.convexHull(np.asarray(pts, np.float32).reshape(-1, 1, 2))
    return np.asarray(h, np.float64).reshape(-1, 2)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(small, 1e-6)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, np.generic):
            out[k] = v.item()
        elif isinstance(v, tuple):
            out[k] = [float(x) for x in v]
    return out


def _to_scene(m: F32, pts: npt.ArrayLike, pixel: bool) -> Points:
    """Canvas points to scene points; ``pixel`` points are pixel centres and get their extent."""
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    if pixel:
        p = np.concatenate([p + np.array(d) for d in ((0, 0), (1, 0), (0, 1), (1, 1))])
    return np.asarray(p @ np.asarray(m[:, :2], np.float64).T + np.asarray(m[:, 2], np.float64), np.float64)


def _box_of(q: Points) -> list[float]:
    return [float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())]


def _damage(
    canvas: ItemCanvas,
    rng: np.random.Generator,
    defect_free: bool | None,
    n_defects: int | None,
    classes: tuple[str, ...] | None,
    mix: DefectMix,
    skip: frozenset[int],
) -> _Damage:
    """The item with its defects painted in: none for a defect-free item, else as many as asked or drawn."""
    damaged = _Damage.of(canvas)
    no_defect = (rng.random() < mix.defect_free_p) if defect_free is None else bool(defect_free)
    if not no_defect:
        want = n_defects if n_defects is not None else int(rng.choice(list(mix.counts)))
        damaged.painted = _paint_defects(canvas, damaged.rgb, damaged.alpha, want, rng, classes, skip)
    return damaged


def _item_labels(m_item: F32, canvas: ItemCanvas, damaged: _Damage, layout: _Layout) -> None:
    """Scene boxes and outlines of the item, its defects and the codes printed on it, into ``layout``."""
    names = default_labelmap()
    # item box: the item as it now looks (a missing cap leaves the neck)
    pts = _to_scene(m_item, _mask_hull(damaged.alpha > 0.5), pixel=True)
    layout.boxes.append(_box_of(pts))
    layout.outlines.append(_hull(pts))
    layout.labels.append(names.id_of(ITEM))
    for p in damaged.painted:
        q = _to_scene(m_item, p.hull, pixel=False)
        layout.boxes.append(_box_of(q))
        layout.outlines.append(_hull(q))
        layout.labels.append(names.id_of(p.cls))
    for code in canvas.codes:
        bx0, by0, bx1, by1 = code["box"]
        q = _to_scene(m_item, np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]], np.float64), False)
        layout.code_boxes.append(_box_of(q))
        layout.code_meta.append({"symbology": code["symbology"], "text": code["text"], "where": "item", "outline": q})


def _truth(
    meta: dict[str, Any],
    layout: _Layout,
    out_boxes: npt.NDArray[np.float32],
    painted: list[Painted],
    seen: list[float | None],
    empty: bool,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The labels as the camera left them (boxes pushed out of the frame dropped), and the sidecar's boxes."""
    n_lab = len(layout.boxes)
    lab_boxes, lab_ids, kept = _sanitize(out_boxes[:n_lab], np.asarray(layout.labels, np.int64))
    if not empty:
        ibox = out_boxes[0]
        iarea = max(1e-6, float((ibox[2] - ibox[0]) * (ibox[3] - ibox[1])))
        meta["item"]["box"] = [round(float(v), 2) for v in ibox]
        for k, (p, vis) in enumerate(zip(painted, seen, strict=True), start=1):
            if not kept[k]:
                continue
            b = out_boxes[k]
            meta["defects"].append(
                {
                    "class": p.cls,
                    "zone": p.zone,
                    "severity": round(p.severity, 3),
                    "area_frac": round(float((b[2] - b[0]) * (b[3] - b[1])) / iarea, 5),
                    "box": [round(float(v), 2) for v in b],
                    "kind": p.kind,
                    "visibility": None if vis is None else round(vis, 1),
                }
            )
    for cb, cm in zip(out_boxes[n_lab : n_lab + len(layout.code_meta)], layout.code_meta, strict=True):
        meta["codes"].append({**cm, "box": [round(float(v), 2) for v in cb]})
    return lab_boxes, lab_ids


def _paint_defects(
    c: ItemCanvas,
    img: F32,
    alpha: F32,
    want: int,
    rng: np.random.Generator,
    only: tuple[str, ...] | None = None,
    skip: frozenset[int] = frozenset(),
) -> list[Painted]:
    """Paint up to ``want`` defects; those whose index is in ``skip`` are drawn and taken back at the end.

    Skipped defects still take their random draws, their place and their pixels while the others are
    drawn, so every other defect comes out as it did before (a defect that would have fallen on a
    skipped one's pixels is refused or shaped just the same); their own change is then subtracted.
    That is how a defect the light burns out, or one below the visibility floor, is removed.
    """
    opts = {k: v for k, v in options(c).items() if only is None or k in only}
    if not opts:
        return []
    classes = sorted(opts)
    weights = np.array([CLASS_WEIGHT.get((c.family, k), 1.0) for k in classes])
    placed: list[Painted] = []
    undo: list[tuple[F32, F32]] = []
    tries = 0
    while len(placed) < want and tries < want * 4:
        tries += 1
        cls = classes[int(rng.choice(len(classes), p=weights / weights.sum()))]
        if cls in ("missing_part", "broken_seal") and any(p.cls == cls for p in placed):
            continue
        zone = _pick(rng, opts[cls])
        sev = float(np.clip(rng.beta(1.6, 2.2), 0.02, 1.0))
        snap_img, snap_alpha = img.copy(), alpha.copy()
        p = paint(c, img, alpha, cls, zone, sev, rng)
        if p is None:
            continue
        if any(_overlap(p.box, q.box) > 0.6 for q in placed):
            img[:] = snap_img  # overlapping defects would share a box
            alpha[:] = snap_alpha
            continue
        if len(placed) in skip:
            undo.append((img - snap_img, alpha - snap_alpha))
        placed.append(p)
    for d_img, d_alpha in undo:
        np.clip(img - d_img, 0.0, None, out=img)
        np.clip(alpha - d_alpha, 0.0, 1.0, out=alpha)
    return [p for i, p in enumerate(placed) if i not in skip]


def _warp_item(
    c: ItemCanvas, rgb_def: F32, alpha_def: F32, m: F32, win: tuple[float, float, float, float]
) -> dict[str, F32]:
    x0, y0, x1, y1 = (int(v) for v in win)
    mw = m.copy()
    mw[0, 2] -= x0
    mw[1, 2] -= y0
    size = (x1 - x0, y1 - y0)

    def warp(a: F32) -> F32:
        return np.asarray(
            cv2.warpAffine(a, mw, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0),
            np.float32,
        )

    clean = warp(np.dstack([c.rgb, c.alpha, c.gloss]))
    dirty = warp(np.dstack([rgb_def, alpha_def]))
    return {
        "rgb_clean": np.ascontiguousarray(clean[:, :, :3]),
        "alpha_clean": np.ascontiguousarray(clean[:, :, 3]),
        "gloss": np.ascontiguousarray(clean[:, :, 4]),
        "rgb": np.ascontiguousarray(dirty[:, :, :3]),
        "alpha": np.ascontiguousarray(dirty[:, :, 3]),
    }


def _sanitize(
    boxes: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Drop boxes the camera pushed (almost) out of the frame."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.int64), np.zeros((0,), bool)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    keep = (w >= 2.0) & (h >= 2.0)
    return np.ascontiguousarray(boxes[keep], np.float32), ids[keep], keep


def _mat(rng: np.random.Generator, kind: str, h: int, w: int, unit: float) -> F32:
    rng.integers(1 << 30)  # keeps every bench's draws where they were
    if kind == "cutting mat":
        base = jitter_colour(rng, rgb(_pick(rng, ("#2e6b4f", "#1f4e79", "#4a4f55", "#2b2d2f", "#3c6e71"))), 0.02)
        n = value_noise(rng, h, w, unit * 0.3, 3)
        img = np.asarray(base, np.float32) * (1.0 + (n[:, :, None] - 0.5) * 0.08)
        step = unit / float(rng.uniform(9, 14))
        off = rng.uniform(0, step, 2)
        line_col = lerp(base, (1.0, 1.0, 1.0), 0.35)
        for i, x in enumerate(np.arange(off[0], w, step)):
            polyline(img, np.array([[x, 0], [x, h]]), line_col, 1.0, 0.45 if i % 5 == 0 else 0.22)
        for i, y in enumerate(np.arange(off[1], h, step)):
            polyline(img, np.array([[0, y], [w, y]]), line_col, 1.0, 0.45 if i % 5 == 0 else 0.22)
        for i, x in enumerate(np.arange(off[0], w, step)):
            if i % 2 == 0:
                text(img, str(i), (x + 2, off[1] + step * 0.45), step * 0.22, line_col, 1, alpha=0.6)
    elif kind == "esd mat":
        base = jitter_colour(rng, rgb(_pick(rng, ("#5a7184", "#6e7f73", "#566573", "#4d6a8a"))), 0.02)
        n = value_noise(rng, h, w, unit * 0.25, 4)
        sp = value_noise(rng, h, w, 2.0, 1)
        img = np.asarray(base, np.float32) * (1.0 + (n[:, :, None] - 0.5) * 0.1 + (sp[:, :, None] - 0.5) * 0.08)
        sx, sy = (w * 0.06, h * 0.08) if rng.random() < 0.5 else (w * 0.94, h * 0.92)
        r = unit * 0.025
        fill_poly(img, ellipse_pts(sx, sy, r, r, 0, 24), (0.72, 0.72, 0.74))
        fill_poly(img, ellipse_pts(sx, sy, r * 0.45, r * 0.45, 0, 16), (0.45, 0.45, 0.47))
    elif kind == "wood":
        base = jitter_colour(rng, rgb(_pick(rng, ("#b08050", "#c49a6c", "#8b5a2b", "#d2b48c"))), 0.03)
        warp = value_noise(rng, h, w, unit * 0.4, 2)
        ys = np.arange(h, dtype=np.float32)[:, None]
        rings = np.sin(ys * (2 * np.pi / (unit * rng.uniform(0.03, 0.07))) + warp * 9.0)
        fib = streaks(rng, h, w, max(15, int(unit * 0.25)), horizontal=True)
        lum = 1.0 + rings * 0.07 + fib * 0.04 + (value_noise(rng, h, w, unit * 0.5, 2) - 0.5) * 0.15
        img = np.asarray(base, np.float32) * lum[:, :, None]
        # plank joints
        for y in np.arange(rng.uniform(0, unit * 0.5), h, unit * rng.uniform(0.35, 0.55)):
            polyline(img, np.array([[0, y], [w, y]]), lerp(base, (0, 0, 0), 0.5), 1.0, 0.7)
    elif kind == "laminate":
        base = jitter_colour(rng, rgb(_pick(rng, ("#d8d8d4", "#e6e2d8", "#c9ccd0", "#efefef"))), 0.015)
        n = value_noise(rng, h, w, unit * 0.35, 3)
        sp = value_noise(rng, h, w, 1.5, 1)
        img = np.asarray(base, np.float32) * (1.0 + (n[:, :, None] - 0.5) * 0.05 + (sp[:, :, None] - 0.5) * 0.05)
    else:  # rubber
        base = jitter_colour(rng, rgb(_pick(rng, ("#2b2b2b", "#333a36", "#3a3a40"))), 0.01)
        n = value_noise(rng, h, w, 3.0, 2)
        m_ = value_noise(rng, h, w, unit * 0.3, 2)
        img = np.asarray(base, np.float32) * (1.0 + (n[:, :, None] - 0.5) * 0.25 + (m_[:, :, None] - 0.5) * 0.1)
    # sometimes the mat ends and the table shows along one side
    if rng.random() < 0.25:
        table = jitter_colour(rng, rgb(_pick(rng, ("#9c9c96", "#b7a78f", "#7d7d7d"))), 0.02)
        edge = int(rng.uniform(0.04, 0.12) * (w if rng.random() < 0.5 else h))
        side = int(rng.integers(4))
        t = np.asarray(table, np.float32) * (1.0 + (value_noise(rng, h, w, unit * 0.3, 2)[:, :, None] - 0.5) * 0.06)
        sl = {
            0: (slice(None), slice(0, edge)),
            1: (slice(None), slice(w - edge, w)),
            2: (slice(0, edge), slice(None)),
            3: (slice(h - edge, h), slice(None)),
        }[side]
        img[sl] = t[sl]
    return np.asarray(np.clip(img, 0, 1), np.float32)


def _packing_slip(
    scene: F32,
    rng: np.random.Generator,
    spot: tuple[float, float],
    sw: float,
    sh: float,
    light: _Light,
    unit: float,
) -> tuple[tuple[float, float, float, float], list[tuple[list[float], dict[str, Any]]]]:
    """A return slip lying on the bench: printed lines, an RMA QR code, a barcode; returns box and codes."""
    ang = float(rng.uniform(-25, 25))
    pw, ph = int(sw), int(sh)
    paper = np.empty((ph, pw, 3), np.float32)
    paper[:] = jitter_colour(rng, (0.95, 0.95, 0.94), 0.01)
    paper *= 1.0 + (value_noise(rng, ph, pw, sw * 0.5, 2)[:, :, None] - 0.5) * 0.05
    ink: Colour = (0.12, 0.12, 0.14)
    pad = pw * 0.07
    th = max(5.0, ph * 0.045)
    text(paper, "RETURN SLIP", (pad, pad + th), th, ink, max(1, int(th / 8)))
    rma = random_rma(rng)
    text(paper, rma, (pad, pad + th * 2.8), th * 0.7, ink)
    y = pad + th * 4.0
    for _ in range(4):
        ln = rng.uniform(0.3, 0.8) * (pw - 2 * pad)
        polyline(paper, np.array([[pad, y], [pad + ln, y]]), (0.45, 0.45, 0.47), max(1.0, th * 0.25), 0.8)
        y += th * 0.9
    codes: list[tuple[list[float], dict[str, Any]]] = []
    mod = int(min(pw * 0.62, ph - y - pad * 0.5) // qr_modules(rma))
    local: list[tuple[list[float], dict[str, Any]]] = []
    if mod >= 1:
        qr = draw_qr(rma, mod)
        qx, qy = int(pw - pad - qr.shape[1]), int(ph - pad * 0.5 - qr.shape[0])
        paste_grey(paper, qr, qx, qy, ink)
        local.append(([qx, qy, qx + qr.shape[1], qy + qr.shape[0]], {"symbology": "QR", "text": rma, "where": "slip"}))
        ean = random_ean13(rng)
        bar = draw_ean13(ean, 1, int(ph * 0.12), with_digits=False)
        avail = int(qx - pad * 1.5)
        if avail > 40:
            if bar.shape[1] > avail:
                bar = np.asarray(cv2.resize(bar, (avail, bar.shape[0]), interpolation=cv2.INTER_AREA), np.uint8)
            bx, by = int(pad), int(ph - pad * 0.5 - bar.shape[0])
            paste_grey(paper, bar, bx, by, ink)
            local.append(
                ([bx, by, bx + bar.shape[1], by + bar.shape[0]], {"symbology": "EAN_13", "text": ean, "where": "slip"})
            )
    # place the slip: rotate about its centre onto the scene
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), ang, 1.0)
    m[0, 2] += spot[0] - pw / 2
    m[1, 2] += spot[1] - ph / 2
    h, w = scene.shape[:2]
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float64) @ m[:, :2].T + m[:, 2]
    x0, y0 = max(0, int(corners[:, 0].min()) - 8), max(0, int(corners[:, 1].min()) - 8)
    x1, y1 = min(w, int(corners[:, 0].max()) + 9), min(h, int(corners[:, 1].max()) + 9)
    mw = m.copy()
    mw[0, 2] -= x0
    mw[1, 2] -= y0
    rgba = cv2.warpAffine(np.dstack([paper, np.ones((ph, pw), np.float32)]), mw, (x1 - x0, y1 - y0))
    a = rgba[:, :, 3]
    region = scene[y0:y1, x0:x1]
    sh_ = cv2.GaussianBlur(
        cv2.warpAffine(
            a,
            np.array([[1, 0, light.shadow_offset[0] * 0.15], [0, 1, light.shadow_offset[1] * 0.15]], np.float32),
            (a.shape[1], a.shape[0]),
        ),
        (0, 0),
        2.0,
    )
    region *= (1.0 - 0.25 * sh_)[:, :, None]
    region += a[:, :, None] * (rgba[:, :, :3] - region)
    for code_box, cm in local:
        bx0, by0, bx1, by1 = code_box
        q = np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]], np.float64) @ m[:, :2].T + m[:, 2]
        codes.append(([float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())], cm))
    box = (
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    )
    return box, codes


def _draw_glove(scene: F32, g: dict[str, Any], light: _Light, unit: float) -> None:
    """A nitrile-gloved hand reaching in from the edge of the frame."""
    rng = np.random.default_rng(int(g["seed"]))  # its own stream: drawn twice (with and without defects), alike
    cx, cy, size = float(g["cx"]), float(g["cy"]), float(g["size"])
    a = np.deg2rad(float(g["angle"]))
    fwd = np.array([np.cos(a), np.sin(a)])
    side = np.array([-fwd[1], fwd[0]])
    palm_c = np.array([cx, cy]) - fwd * size * 0.35
    palm = [
        palm_c + fwd * size * x + side * size * y
        for x, y in ((-0.9, -0.42), (0.25, -0.45), (0.42, -0.2), (0.45, 0.22), (0.25, 0.45), (-0.9, 0.45))
    ]
    outline = smooth_closed(np.asarray(palm), 48)
    fingers: list[Points] = []
    curl = float(rng.uniform(-0.15, 0.15))  # fingers together, bent a little to one side
    for off, ln in ((-0.29, 0.4), (-0.1, 0.48), (0.1, 0.46), (0.28, 0.36)):
        base = palm_c + fwd * size * 0.25 + side * size * off
        tip = base + (fwd + side * (off * 0.15 + curl)) * size * ln * float(rng.uniform(0.92, 1.05))
        fingers.append(_capsule(base, tip, size * 0.1))
    thumb_base = palm_c + side * size * 0.36 - fwd * size * 0.1
    thumb_tip = thumb_base + (fwd * 0.55 + side * 0.45) * size * 0.45
    fingers.append(_capsule(thumb_base, thumb_tip, size * 0.11))
    h, w = scene.shape[:2]
    m = np.zeros((h, w), np.float32)
    mask_poly(m, [outline, *fingers])
    dx, dy = light.shadow_offset
    sh = cv2.GaussianBlur(
        cv2.warpAffine(m, np.array([[1, 0, dx * 1.5], [0, 1, dy * 1.5]], np.float32), (w, h)),
        (0, 0),
        max(2.0, light.shadow_blur * 1.5),
    )
    scene *= (1.0 - 0.45 * sh)[:, :, None]
    col = np.asarray(g["colour"], np.float32)
    shade = bevel(m, unit * 0.03, light.direction, 1.4)
    glove = col * (1.0 + value_noise(rng, h, w, unit * 0.1, 2)[:, :, None] * 0.1 - 0.05) + shade[:, :, None] * 0.8
    scene += m[:, :, None] * (glove - scene)
    for f in fingers[:4]:  # creases between fingers
        polyline(scene, f[: len(f) // 2], tuple(float(v) * 0.6 for v in col), 1.0, 0.4)  # type: ignore[arg-type]


def _capsule(p0: Points, p1: Points, r: float) -> Points:
    d = p1 - p0
    ang = float(np.degrees(np.arctan2(d[1], d[0])))
    n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
    cap = ellipse_pts(float(p1[0]), float(p1[1]), r, r, ang, 24)
    front = [q for q in cap if np.dot(q - p1, d) >= 0]
    return np.asarray([p0 + n * r, *sorted(front, key=lambda q: -float(np.dot(q - p1, n))), p0 - n * r], np.float64)
