"""The shipped model's plan (``models/recipes/default-model.plan.yaml``) and the progress of a run of it.

``make model`` trains a chain of stages, each from the previous stage's version. The chain is data,
so that its budget is read in one place and changed without code. A run records which stages are
done after each one, so a run of hours can be stopped and continued: the next run starts at the
first stage not done (a stage stopped mid-way starts over; nothing of it was registered).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inspector.registry import write_atomic
from inspector.yamlfile import read_mapping

PROGRESS_FILE = ".make-model.json"  # in the registry folder; not committed


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x960"`` -> ``(1280, 960)``."""
    w, sep, h = text.strip().lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit()):
        raise ValueError(f"size must look like 640x480, got {text!r}")
    return int(w), int(h)


class TrainingRender(BaseModel):
    """The training render every stage draws from (at the stage's own size): one seed, a defect-rich mix."""

    model_config = ConfigDict(extra="forbid")
    images: int = Field(3200, ge=2, description="training + validation images")
    seed: int = 1
    val: float = Field(0.08, gt=0.0, lt=1.0, description="share kept for validation")
    defect_free: float = Field(0.15, ge=0.0, le=1.0, description="share of defect-free items")
    defects: list[int] = Field(default_factory=lambda: [1, 2, 2, 3, 3, 4], description="counts a damaged item draws")


class EvaluationRender(BaseModel):
    """The test render (another seed, the bench's default mix), at the last stage's size."""

    model_config = ConfigDict(extra="forbid")
    images: int = Field(600, ge=2)
    seed: int = 2


class PlanStage(BaseModel):
    """One stage: a recipe trained for ``minutes`` on the training render at ``size``."""

    model_config = ConfigDict(extra="forbid")
    recipe: str = Field(description="recipe file, relative to the plan's folder")
    size: str = Field("640x480", description="render size WxH")
    minutes: float = Field(gt=0.0, description="training budget (the recipe's time_budget_min is replaced)")
    images: int | None = Field(
        None, ge=2, description="this stage's training render (default training_data.images): large frames cost more"
    )

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: object) -> str:
        w, h = parse_size(str(v))
        return f"{w}x{h}"

    @property
    def wh(self) -> tuple[int, int]:
        return parse_size(self.size)


class ModelPlan(BaseModel):
    """The whole chain: the data it renders and its stages, in order."""

    model_config = ConfigDict(extra="forbid")
    training_data: TrainingRender = Field(default_factory=TrainingRender)
    test_data: EvaluationRender = Field(default_factory=EvaluationRender)
    stages: list[PlanStage] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> ModelPlan:
        recipes = [s.recipe for s in self.stages]
        if len(set(recipes)) != len(recipes):
            raise ValueError("each recipe may stand in one stage only (a stage is named by its recipe)")
        return self

    @property
    def budget_min(self) -> float:
        return sum(s.minutes for s in self.stages)


def load_plan(path: Path) -> ModelPlan:
    """Read and check a plan; errors name the file and the field."""
    if not path.is_file():
        raise FileNotFoundError(f"plan not found: {path}")
    try:
        return ModelPlan.model_validate(read_mapping(path, "a plan is a YAML mapping"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "plan"
        raise ValueError(f"{path}: {where}: {first['msg']}") from exc


class StageDone(BaseModel):
    """A finished stage as the progress file keeps it."""

    model_config = ConfigDict(extra="forbid")
    recipe: str
    size: str
    version: str
    budget_min: float
    seconds: float = Field(description="training time the version records")
    wall_seconds: float = Field(description="the stage from start to end, its render included")


class Progress(BaseModel):
    """Which stages of a run are done; written after each stage."""

    model_config = ConfigDict(extra="forbid")
    plan: str
    data: dict[str, Any] = Field(description="the training and test renders the stages were trained on")
    started_at: str
    parts: int = Field(1, ge=1, description="how many times the run was started or continued")
    seconds: float = Field(0.0, ge=0.0, description="wall-clock time spent in all parts so far")
    done: list[StageDone] = Field(default_factory=list)

    @classmethod
    def fresh(cls, plan_path: Path, plan: ModelPlan) -> Progress:
        return cls(
            plan=str(plan_path),
            data=data_key(plan),
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )


def data_key(plan: ModelPlan) -> dict[str, Any]:
    """What must not change between the parts of one run: the renders (stages may be appended)."""
    return {"training_data": plan.training_data.model_dump(), "test_data": plan.test_data.model_dump()}


def load_progress(path: Path) -> Progress | None:
    """The progress of an unfinished run, or ``None`` when there is none; a clear error when it is unreadable."""
    if not path.is_file():
        return None
    hint = "delete it or run with --restart"
    try:
        return Progress.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the progress file of make model is not valid JSON ({exc}); {hint}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "progress"
        raise ValueError(f"{path}: not a make-model progress file ({where}: {first['msg']}); {hint}") from exc


def save_progress(path: Path, progress: Progress) -> None:
    """Atomically: a run killed while writing leaves the previous state, never half a file."""
    write_atomic(path, progress.model_dump_json(indent=2) + "\n")


def first_unfinished(plan: ModelPlan, names: list[str], progress: Progress, path: Path) -> int:
    """The index of the first stage to train; an error when the progress belongs to another plan.

    ``names`` are the stages' recipe names, as the progress file records them.
    """
    hint = f"run with --restart to start over (the progress is in {path})"
    if progress.data != data_key(plan):
        raise ValueError(f"the unfinished run was trained on other renders ({progress.data}); {hint}")
    if len(progress.done) > len(plan.stages):
        raise ValueError(
            f"the unfinished run has {len(progress.done)} stages done, the plan only {len(plan.stages)}; {hint}"
        )
    for i, (done, stage, name) in enumerate(zip(progress.done, plan.stages, names, strict=False)):
        if (done.recipe, done.size) != (name, stage.size):
            raise ValueError(
                f"stage {i + 1} of the unfinished run is {done.recipe} at {done.size}, "
                f"the plan's is {name} at {stage.size}; {hint}"
            )
    return len(progress.done)
