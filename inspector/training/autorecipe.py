"""Training without a hand-made recipe: measured facts about a dataset -> a recipe, and why.

:func:`measure` reads what decides a recipe (image sizes, box sizes, class balance, grey or
colour, the defect-free share, whether our pretraining checkpoint is here); :func:`advise` is
pure: the same facts give the same recipe, with one reason per choice naming the figure it
rests on. ``inspector train`` without ``--recipe`` trains with it and stores it in the
version (with the reasons as comments) so it can be rerun and edited; ``inspector data
stats`` prints the same advice. The rules carry over what the hand-written recipes measured
(``models/recipes/neu-det.yaml``, ``neu-transfer.yaml``, ``bench-det.yaml``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspector.data.formats.spec import DatasetSpec, image_size
from inspector.training.recipe import Recipe

MAX_UPSCALE = 1.6  # upsampling adds cost, not detail: never past this
# A short run needs epochs more than pixels: NEU-DET (200 px, thinnest tenth of the boxes 18 px) in 30 minutes on
# 2 cores scored test mAP50 0.640 at 320 px (21 epochs) and 0.701 at 224 px (78 epochs), bench/neu-det.json.
LONG_BUDGET_MIN = 120.0  # from this budget on, thin boxes are upsampled towards THIN_BOX_PX
UPSAMPLE_BELOW_PX = 16  # on a shorter budget, upsampled only when the thin boxes are below two stride-8 cells
CPU_MAX_INPUT = 640  # a step's cost grows with the square of the input: the largest whole-image input on a CPU
THIN_BOX_PX = 32  # the short side a thin box should have at the model's input (four cells of the stride-8 head)
VISIBLE_BOX_PX = 8  # below one stride-8 cell a box is a guess: crop at native resolution instead of shrinking
FOCUS_MAX_SIDE = 1280  # focus crops serve the whole frame at native size; larger frames are served in tiles
TILE = 640
FEW_IMAGES = 500  # below this many training images every class is repeated towards balance
IMBALANCE = 2.0  # most / fewest images per class from which rare classes are repeated
GREY_SHARE = 0.9  # share of sampled images with equal channels for the set to count as grey
GREY_SAMPLE = 64  # images read to tell grey from colour
RAM_CACHE_GB = 4.0  # decoded training images above this go uncached (ultralytics would check RAM anyway)
DEFAULT_BUDGET_MIN = 30.0

# what the measured hand-written recipes share: a short CPU run needs many optimizer steps
SCHEDULE: dict[str, Any] = {
    "optimizer": "AdamW",
    "lr0": 0.002,
    "nbs": 16,
    "cos_lr": True,
    "warmup_epochs": 2,
    "patience": 300,
    "plots": True,
}
FINE_TUNE_ARGS: dict[str, Any] = {"lr0": 0.002, "warmup_epochs": 1, "warmup_bias_lr": 0.01}


@dataclass(frozen=True, slots=True)
class DataFacts:
    """What a recipe is chosen from, all measured on the training split (sizes in native pixels)."""

    name: str
    train_images: int
    image_side: int  # median long side
    box_short_p10: float  # the thinnest tenth of the boxes: their short side
    box_side_p90: float  # the largest tenth: square root of their area
    images_per_class: dict[str, int]
    grey_share: float  # of the sampled images, those whose three channels are equal
    defect_free_share: float  # images without a box
    checkpoint: str | None = None  # our newest pretraining checkpoint in the registry, if any


@dataclass(frozen=True, slots=True)
class Choice:
    """One setting and the measured reason for it."""

    setting: str
    value: Any
    why: str

    def line(self) -> str:
        return f"{self.setting}: {_text(self.value)} - {self.why}"


@dataclass(frozen=True, slots=True)
class Advice:
    """A recipe (the fields of :class:`~inspector.training.recipe.Recipe`) and the choices behind it."""

    facts: DataFacts
    recipe: dict[str, Any]
    choices: list[Choice] = field(default_factory=list)

    def to_recipe(self) -> Recipe:
        return Recipe.model_validate(self.recipe)

    def lines(self) -> list[str]:
        return [c.line() for c in self.choices]

    def comments(self) -> list[str]:
        """What heads the stored recipe file and the card: where the recipe came from, then why."""
        return [f"Chosen by 'inspector train' from the data of {self.facts.name} (no --recipe given):"] + [
            f"  {ln}" for ln in self.lines()
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "facts": asdict(self.facts),
            "recipe": self.to_recipe().model_dump(exclude_none=True),
            "choices": [{"setting": c.setting, "value": c.value, "why": c.why} for c in self.choices],
        }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items())
    return str(value)


def _round32(x: float) -> int:
    return max(64, round(x / 32) * 32)


def recipe_name(dataset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", dataset).strip("-_")[:50] or "data"
    return f"auto-{slug}"


def advise(facts: DataFacts, budget_min: float = DEFAULT_BUDGET_MIN) -> Advice:
    """The recipe for ``facts``, each choice with the figure it rests on (pure: no files read)."""
    if facts.train_images < 1:
        raise ValueError(f"{facts.name}: no training images to choose a recipe from")
    choices: list[Choice] = []
    train_args: dict[str, Any] = {}
    small: dict[str, Any] = {}
    recipe: dict[str, Any] = {
        "name": recipe_name(facts.name),
        "description": f"Chosen from the data of {facts.name} by inspector train (no hand-written recipe).",
        "model": "yolov8n.yaml",
        "precision": "bf16",
        "seed": 0,
        "operating_confidence": 0.25,
    }

    # input size, and crops or tiles where shrinking whole images would lose the small boxes
    side, thin = facts.image_side, facts.box_short_p10
    upsample = thin > 0 and (budget_min >= LONG_BUDGET_MIN or thin < UPSAMPLE_BELOW_PX)
    scale = min(MAX_UPSCALE, max(1.0, THIN_BOX_PX / thin)) if upsample else 1.0
    whole = max(_round32(side * scale), 32 * math.ceil(side / 32))  # a multiple of the stride, never below native
    imgsz: int
    if whole <= CPU_MAX_INPUT:
        imgsz = whole
        if upsample or thin <= 0:
            why = f"at most {MAX_UPSCALE}x: upsampling adds cost, not detail"
        else:
            why = (
                f"only rounded up to the stride: a {budget_min:g} min budget buys more epochs at native size, "
                f"and boxes of {UPSAMPLE_BELOW_PX} px or more already span two cells of the finest head"
            )
        choices.append(
            Choice(
                "imgsz",
                imgsz,
                f"images are {side} px (median long side) and the thinnest tenth of the boxes {thin:.0f} px "
                f"across: {imgsz / side:.2f}x makes those {thin * imgsz / side:.0f} px at the input ({why})",
            )
        )
    elif thin * CPU_MAX_INPUT / side >= VISIBLE_BOX_PX:
        imgsz = CPU_MAX_INPUT
        choices.append(
            Choice(
                "imgsz",
                imgsz,
                f"images are {side} px (median long side): at {imgsz} px the thinnest tenth of the boxes "
                f"({thin:.0f} px) is {thin * imgsz / side:.0f} px across, and a larger input costs "
                "the square of its size",
            )
        )
    elif side <= FOCUS_MAX_SIDE:
        focus = min(CPU_MAX_INPUT, max(256, _round32(2 * facts.box_side_p90)))
        imgsz = focus
        small.update(focus=focus, focus_full_share=0.25)
        recipe["serve_imgsz"] = _round32(side)
        choices.append(
            Choice(
                "small_data.focus",
                focus,
                f"boxes as thin as {thin:.0f} px in {side} px images would be "
                f"{thin * CPU_MAX_INPUT / side:.1f} px at a {CPU_MAX_INPUT} px whole-image input: "
                f"train on {focus} px crops at native resolution around them (the largest tenth of the "
                f"boxes is {facts.box_side_p90:.0f} px), "
                f"a quarter of the images also whole, and serve whole frames at {recipe['serve_imgsz']} px",
            )
        )
    else:
        imgsz = TILE
        small.update(tile=TILE, tile_overlap=0.2)
        recipe["serve_imgsz"] = TILE
        choices.append(
            Choice(
                "small_data.tile",
                TILE,
                f"boxes as thin as {thin:.0f} px in {side} px images would be "
                f"{thin * CPU_MAX_INPUT / side:.1f} px at a {CPU_MAX_INPUT} px whole-image input: cut the images into "
                f"{TILE} px tiles (20% overlap) and serve on tiles too (detector.tiling: frame)",
            )
        )
    recipe["imgsz"] = imgsz

    # where training starts
    if facts.checkpoint:
        recipe["init"] = "pretrain"
        recipe["fine_tune"] = {"freeze": 0, "train_args": dict(FINE_TUNE_ARGS)}
        choices.append(
            Choice(
                "init",
                "pretrain",
                f"{facts.train_images} training images: fine-tune from our defect-features checkpoint "
                f"{facts.checkpoint} (every layer adapts, one warm-up epoch) rather than learn features from scratch",
            )
        )
    else:
        recipe["init"] = "scratch"
        choices.append(
            Choice(
                "init",
                "scratch",
                "no pretraining checkpoint in the registry ('make pretrain' makes one): trained from scratch",
            )
        )

    # class balance
    counts = facts.images_per_class
    present = {k: v for k, v in counts.items() if v > 0}
    absent = sorted(k for k, v in counts.items() if v == 0)
    ratio = max(present.values()) / min(present.values()) if present else 1.0
    balance = len(present) > 1 and (facts.train_images < FEW_IMAGES or ratio >= IMBALANCE)
    rare = min(present, key=lambda k: present[k]) if present else None
    if len(present) == 1:
        why = f"one class with boxes ({rare}): nothing to balance"
    elif present:
        why = (
            f"classes range from {min(present.values())} images ({rare}) to {max(present.values())} "
            f"({ratio:.1f}x)"
            + (f" over only {facts.train_images} training images" if facts.train_images < FEW_IMAGES else "")
            + (": images of rare classes are repeated each epoch" if balance else ": sampled as they come")
        )
    else:
        why = "no boxes in the training split: nothing to balance"
    if absent:
        why += f"; no training images of {', '.join(absent)}: the model cannot learn them"
    small["balance"] = balance
    choices.append(Choice("small_data.balance", balance, why))

    # augmentation
    grey = facts.grey_share >= GREY_SHARE
    if grey:
        aug: dict[str, Any] = {"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.3, "flipud": 0.5}
        why = (
            f"{facts.grey_share:.0%} of the sampled images are grey: hue and saturation jitter do nothing, "
            "brightness does; grey surfaces (steel, X-ray) have no up or down, so vertical flips too"
        )
    else:
        aug = {"hsv_h": 0.015, "hsv_s": 0.5, "hsv_v": 0.3, "flipud": 0.0}
        why = (
            f"{1 - facts.grey_share:.0%} of the sampled images are in colour: colour jitter for lighting; "
            "photographed objects have an up, so horizontal flips only"
        )
    train_args.update(fliplr=0.5, **aug)
    choices.append(Choice("augmentation", aug, why))
    at_input = thin * (1.0 if small.get("focus") or small.get("tile") else imgsz / side)
    zoom = 0.3 if at_input < 2 * VISIBLE_BOX_PX else 0.5
    train_args.update(mosaic=1.0, close_mosaic=3, scale=zoom, translate=0.1)
    choices.append(
        Choice(
            "mosaic, scale",
            {"mosaic": 1.0, "scale": zoom},
            f"mosaic shows four images per sample, off for the last 3 epochs; the thinnest boxes are "
            f"{at_input:.0f} px at the input: "
            + ("a milder zoom (0.3) so they do not shrink away" if zoom < 0.5 else "the usual zoom range (0.5)"),
        )
    )

    # batch, cache, time
    batch = 16 if facts.train_images >= 128 else max(2, 2 ** int(math.log2(max(2, facts.train_images // 4))))
    recipe["batch"] = batch
    choices.append(
        Choice(
            "batch",
            batch,
            f"{facts.train_images} training images: "
            + (
                "16 per step, one optimizer step per batch (nbs 16)"
                if batch == 16
                else f"{batch} per step, so an epoch has several steps"
            ),
        )
    )
    n_cached = facts.train_images * (3 if balance else 1)
    gb = n_cached * imgsz * imgsz * 3 / 1e9
    cache: str | bool = "ram" if gb <= RAM_CACHE_GB else False
    train_args["cache"] = cache
    choices.append(
        Choice(
            "cache",
            cache,
            (f"about {gb:.1f} GB" if gb >= 0.1 else "under 0.1 GB")
            + f" of decoded images at {imgsz} px: "
            + (
                "each decoded once per run, the CPU is the bottleneck"
                if cache
                else f"above {RAM_CACHE_GB:g} GB, read from disk each epoch"
            ),
        )
    )
    recipe["time_budget_min"] = budget_min
    recipe["epochs"] = 300
    choices.append(
        Choice(
            "time_budget_min",
            budget_min,
            "the schedule (AdamW, cosine rate, 300 epochs at most) is re-planned to end within the budget",
        )
    )
    if facts.defect_free_share > 0:
        note = (
            f"{facts.defect_free_share:.0%} of the training images have no box: kept as background, they teach "
            "what not to flag"
        )
    else:
        note = (
            "no training image is defect-free: the model never sees a good item; add some with "
            "small_data.negatives to curb false alarms"
        )
    choices.append(Choice("defect-free images", f"{facts.defect_free_share:.0%}", note))

    recipe["train_args"] = {**SCHEDULE, **train_args}
    recipe["small_data"] = small
    return Advice(facts=facts, recipe=recipe, choices=choices)


def _is_grey(path: Path) -> bool | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    bgr = np.asarray(img[:, :, :3], np.int16)
    # JPEG chroma noise leaves a few levels between the channels of a grey picture
    return bool(np.abs(bgr[:, :, 0] - bgr[:, :, 1]).max() <= 8 and np.abs(bgr[:, :, 1] - bgr[:, :, 2]).max() <= 8)


def measure(spec: DatasetSpec, checkpoint: str | None = None, sample: int = GREY_SAMPLE, seed: int = 0) -> DataFacts:
    """The facts :func:`advise` needs, read from the training split (the whole set when it has none)."""
    records = spec.split("train") or list(spec.images)
    if not records:
        raise ValueError(f"{spec.name}: no images to choose a recipe from")
    sides: list[int] = []
    shorts: list[float] = []
    areas: list[float] = []
    per_class = dict.fromkeys(spec.names, 0)
    empty = 0
    for r in records:
        w, h = r.width, r.height
        if not (w and h):
            w, h = image_size(r.path) or (0, 0)
        if w and h:
            sides.append(max(w, h))
        if len(r.class_ids) == 0:
            empty += 1
        for c in {int(c) for c in r.class_ids}:
            if 0 <= c < len(spec.names):
                per_class[spec.names[c]] += 1
        if len(r.boxes) and w and h:
            px = r.boxes * np.array([w, h, w, h], np.float64)
            bw, bh = np.clip(px[:, 2] - px[:, 0], 0, None), np.clip(px[:, 3] - px[:, 1], 0, None)
            shorts += np.minimum(bw, bh).tolist()
            areas += np.sqrt(bw * bh).tolist()
    if not sides:
        raise ValueError(f"{spec.name}: none of the training images can be read")
    rng = np.random.default_rng(seed)
    picked = [records[i] for i in rng.permutation(len(records))[:sample]]
    grey = [g for g in (_is_grey(r.path) for r in picked) if g is not None]
    return DataFacts(
        name=spec.name,
        train_images=len(records),
        image_side=int(np.median(sides)),
        box_short_p10=round(float(np.quantile(shorts, 0.1)), 1) if shorts else 0.0,
        box_side_p90=round(float(np.quantile(areas, 0.9)), 1) if areas else 0.0,
        images_per_class=per_class,
        grey_share=round(sum(grey) / len(grey), 3) if grey else 0.0,
        defect_free_share=round(empty / len(records), 3),
        checkpoint=checkpoint,
    )


def advise_for(spec: DatasetSpec, root: Path | None = None, budget_min: float = DEFAULT_BUDGET_MIN) -> Advice:
    """Measure ``spec`` and advise, looking for our pretraining checkpoint in the registry at ``root``."""
    from inspector.training.run import newest_pretrain

    return advise(measure(spec, checkpoint=newest_pretrain(root)), budget_min)


def advise_data_yaml(data_yaml: Path, root: Path | None = None, budget_min: float | None = None) -> Advice:
    """The advice for the dataset a trainer is given (its data.yaml), as ``inspector train`` uses it."""
    from inspector.data.formats import read_data_yaml

    return advise_for(read_data_yaml(data_yaml), root, budget_min or DEFAULT_BUDGET_MIN)
