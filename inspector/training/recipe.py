"""Training recipes: one YAML file per way of training a model, stored with every version.

A recipe names the architecture, input size, schedule and augmentation; anything under
``train_args`` goes to ultralytics unchanged, so a recipe can use every knob it has
without this module growing one field per knob. The effective recipe (after command-line
overrides) is written into the registry next to the weights it produced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inspector.yamlfile import read_mapping

# Arguments the trainer sets itself: a recipe may not override them through train_args.
RESERVED_TRAIN_ARGS = frozenset(
    {
        "data",
        "model",
        "epochs",
        "imgsz",
        "batch",
        "seed",
        "device",
        "project",
        "name",
        "exist_ok",
        "time",
        "workers",
        "val",
    }
)


class Target(BaseModel):
    """The figure a recipe promises, checked against the evaluation and stated in the card."""

    model_config = ConfigDict(extra="forbid")
    metric: Literal["map50", "map50_95"] = "map50"
    min: float = Field(ge=0.0, le=1.0)
    measured_on: str = Field("test split", description="what the target is measured on, in words")


class FineTune(BaseModel):
    """How to start from existing weights (backbone and neck kept, head resized to the labelmap)."""

    model_config = ConfigDict(extra="forbid")
    freeze: int = Field(0, ge=0, description="first N layers frozen (10 = the YOLOv8 backbone)")
    train_args: dict[str, Any] = Field(default_factory=dict, description="ultralytics args for fine-tuning")


class SmallData(BaseModel):
    """Small-data aids applied to the training data before a run (see ``inspector.training.smalldata``)."""

    model_config = ConfigDict(extra="forbid")
    balance: bool = Field(False, description="repeat images holding rare classes (class-balanced sampling)")
    balance_threshold: float = Field(0.5, gt=0.0, le=1.0)
    negatives: str | None = Field(None, description="folder of defect-free images added with empty labels")
    tile: int | None = Field(None, ge=64, description="cut images above 1.5 x tile into tile x tile patches")
    tile_overlap: float = Field(0.2, ge=0.0, lt=0.9)
    focus: int | None = Field(
        None, ge=64, description="train on native-resolution crops of this size around small objects (see serve_imgsz)"
    )
    focus_full_share: float = Field(0.25, ge=0.0, le=1.0, description="share of images also kept whole")
    gray_share: float = Field(0.0, ge=0.0, le=1.0, description="share of focus crops written in grey")
    subset: int | None = Field(None, ge=1, description="train on a seeded subset of this many images")
    subset_seed: int = 0

    def active(self) -> bool:
        return bool(self.balance or self.negatives or self.tile or self.focus or self.subset)


class Recipe(BaseModel):
    """A training recipe (``models/recipes/<name>.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,60}$")
    description: str = ""
    role: Literal["detector", "pretrain"] = Field(
        "detector",
        description="pretrain: a general defect-features checkpoint, where fine-tuning starts (--init pretrain)",
    )
    model: str = Field("yolov8n.yaml", description="ultralytics model yaml (built from scratch) or a .yaml path")
    init: str = Field(
        "pretrain",
        description="pretrain (our newest pretraining checkpoint, else the active model, else scratch) | "
        "scratch | active | a registry version | a .pt path",
    )
    imgsz: int = Field(640, ge=32, le=4096, description="training input size")
    serve_imgsz: int | None = Field(
        None, ge=32, le=4096, description="input size for evaluation and serving (default: imgsz)"
    )
    epochs: int = Field(100, ge=1, description="upper bound; a time budget re-plans the schedule to fit")
    time_budget_min: float | None = Field(None, gt=0, description="wall-clock training budget in minutes")
    batch: int = Field(16, ge=1)
    workers: int = Field(0, ge=0, le=8, description="data-loader processes (ultralytics uses none on CPU)")
    val_every: int = Field(
        1, ge=1, description="validate every Nth epoch and the last: on a CPU each validation costs training time"
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: CPU bfloat16 autocast and channels-last for the training step (needs AVX-512 BF16)"
    )
    seed: int = 0
    operating_confidence: float = Field(0.25, ge=0.0, le=1.0)
    target: Target | None = None
    train_args: dict[str, Any] = Field(default_factory=dict)
    fine_tune: FineTune = Field(default_factory=FineTune)
    small_data: SmallData = Field(default_factory=SmallData)

    @field_validator("train_args")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(RESERVED_TRAIN_ARGS & set(v))
        if clash:
            raise ValueError(f"set {', '.join(clash)} as top-level recipe fields, not in train_args")
        return v

    @field_validator("model")
    @classmethod
    def _yaml_only(cls, v: str) -> str:
        if not v.endswith((".yaml", ".yml")):
            raise ValueError("model must be a YOLO .yaml (built offline); start from weights with 'init'")
        return v

    def with_overrides(self, **changes: Any) -> Recipe:
        """A copy with the non-None command-line overrides applied (and validated)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return Recipe.model_validate(data)

    def to_yaml(self, comments: Sequence[str] = ()) -> str:
        """The recipe file; ``comments`` (one line each) go on top, e.g. why each setting was chosen."""
        head = "".join(f"# {line}\n" for line in comments)
        return head + yaml.safe_dump(self.model_dump(exclude_none=True), sort_keys=False, allow_unicode=True)


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe; errors name the file and the field."""
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    raw = read_mapping(path, "a recipe is a YAML mapping")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "recipe"
        raise ValueError(f"{path}: {where}: {first['msg']}") from exc
    model_path = path.parent / recipe.model
    if model_path.is_file():  # a model yaml shipped beside the recipe
        recipe = recipe.model_copy(update={"model": str(model_path.resolve())})
    return recipe


def is_pretrain(meta: Mapping[str, Any]) -> bool:
    """A registered version trained by a ``role: pretrain`` recipe: a starting point, not served."""
    return (meta.get("recipe") or {}).get("role") == "pretrain"
