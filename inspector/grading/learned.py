"""The learned grader: a small MLP from detection features to the confirmed grade.

Trained per category on confirmed inspections (features of what the detector saw ->
the grade a person confirmed). It replaces the rubric for its category only when
it beats the rubric on held-out confirmed data (:func:`should_replace_rubric`); that
verdict is stored with the weights, and :func:`load_learned_graders` loads only the
graders that earned it. The rubric stays the fallback everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from inspector.grading.assessment import level_from
from inspector.grading.features import FEATURE_NAMES, N_FEATURES
from inspector.grading.rubric import GENERIC
from inspector.items import FAMILIES
from inspector.types import CONDITION_GRADES, FloatArray, GradeLevel

FORMAT = "inspector-grader-1"
_RUBRIC_P = [FEATURE_NAMES.index(f"rubric.p_{g.value}") for g in CONDITION_GRADES]


def _mlp(n_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, len(CONDITION_GRADES)),
    )


def _as_matrix(features: npt.ArrayLike) -> FloatArray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != N_FEATURES:
        raise ValueError(f"features must have {N_FEATURES} columns, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features must be finite")
    return x


@dataclass
class LearnedGrader:
    """A trained grader for one category; satisfies the grader's ``GradeModel`` protocol."""

    category: str
    model: nn.Sequential
    mean: FloatArray
    std: FloatArray
    version: str = ""
    hidden: int = 32
    metrics: dict[str, Any] = field(default_factory=dict)
    replaces_rubric: bool = False  # set by should_replace_rubric on held-out confirmed data

    def __post_init__(self) -> None:
        if self.category not in (*FAMILIES, GENERIC):
            raise ValueError(f"unknown category {self.category!r}")
        self.model.eval()

    @torch.no_grad()
    def probabilities(self, features: npt.ArrayLike) -> FloatArray:
        """P(A..D) per row of features, shape (N, 4)."""
        x = (_as_matrix(features) - self.mean) / self.std
        logits = self.model(torch.from_numpy(x))
        out: FloatArray = torch.softmax(logits, dim=1).numpy().astype(np.float32)
        return out

    def predict_proba(self, features: FloatArray) -> Mapping[GradeLevel, float]:
        p = self.probabilities(features)[0]
        return {g: float(v) for g, v in zip(CONDITION_GRADES, p, strict=True)}

    def predict_levels(self, features: npt.ArrayLike, level_probability: float = 0.5) -> list[GradeLevel]:
        return [
            level_from(dict(zip(CONDITION_GRADES, (float(v) for v in row), strict=True)), level_probability)
            for row in self.probabilities(features)
        ]

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "category": self.category,
            "version": self.version,
            "hidden": self.hidden,
            "feature_names": list(FEATURE_NAMES),
            "mean": torch.from_numpy(self.mean),
            "std": torch.from_numpy(self.std),
            "metrics": self.metrics,
            "replaces_rubric": self.replaces_rubric,
            "state_dict": self.model.state_dict(),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> LearnedGrader:
        if not path.is_file():
            raise FileNotFoundError(f"learned grader not found: {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise ValueError(f"cannot load learned grader {path}: {exc.__class__.__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a learned grader ({FORMAT})")
        if list(payload["feature_names"]) != list(FEATURE_NAMES):
            raise ValueError(f"{path} was trained on other features; retrain it")
        hidden = int(payload["hidden"])
        model = _mlp(N_FEATURES, hidden)
        model.load_state_dict(payload["state_dict"])
        return cls(
            category=str(payload["category"]),
            model=model,
            mean=payload["mean"].numpy().astype(np.float32),
            std=payload["std"].numpy().astype(np.float32),
            version=str(payload["version"]),
            hidden=hidden,
            metrics=dict(payload["metrics"]),
            replaces_rubric=bool(payload["replaces_rubric"]),
        )


def _labels(grades: Sequence[GradeLevel]) -> npt.NDArray[np.int64]:
    bad = sorted({g.value for g in grades if not GradeLevel(g).is_condition})
    if bad:
        raise ValueError(f"confirmed grades must be A..D, got {bad}")
    return np.array([CONDITION_GRADES.index(GradeLevel(g)) for g in grades], dtype=np.int64)


def train_learned_grader(
    features: npt.ArrayLike,
    grades: Sequence[GradeLevel],
    *,
    category: str,
    epochs: int = 400,
    lr: float = 1e-2,
    weight_decay: float = 1e-3,
    hidden: int = 32,
    seed: int = 0,
    version: str = "",
) -> LearnedGrader:
    """Full-batch training on confirmed examples (features -> confirmed grade A..D)."""
    x = _as_matrix(features)
    y = _labels(grades)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"need as many grades as feature rows, at least two: got {len(x)} rows, {len(y)} grades")
    torch.manual_seed(seed)
    mean = x.mean(axis=0).astype(np.float32)
    std = np.maximum(x.std(axis=0), 1e-3).astype(np.float32)
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    model = _mlp(N_FEATURES, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    grader = LearnedGrader(category=category, model=model, mean=mean, std=std, version=version, hidden=hidden)
    grader.metrics = {"train_examples": len(x), "epochs": epochs, "final_loss": round(float(loss.detach()), 5)}
    return grader


def rubric_levels(features: npt.ArrayLike, level_probability: float = 0.5) -> list[GradeLevel]:
    """The rubric's own grade for each feature row (the features carry its probabilities)."""
    x = _as_matrix(features)
    return [
        level_from(dict(zip(CONDITION_GRADES, (float(v) for v in row[_RUBRIC_P]), strict=True)), level_probability)
        for row in x
    ]


@dataclass(frozen=True, slots=True)
class ReplaceDecision:
    """Whether a learned grader beat the rubric on held-out confirmed data, with the scores."""

    replace: bool
    n: int
    learned_accuracy: float
    rubric_accuracy: float
    learned_mean_grade_error: float  # mean |predicted rank - confirmed rank|, A..D = 0..3
    rubric_mean_grade_error: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "replace": self.replace,
            "n": self.n,
            "learned_accuracy": round(self.learned_accuracy, 4),
            "rubric_accuracy": round(self.rubric_accuracy, 4),
            "learned_mean_grade_error": round(self.learned_mean_grade_error, 4),
            "rubric_mean_grade_error": round(self.rubric_mean_grade_error, 4),
            "reason": self.reason,
        }


def should_replace_rubric(
    learned: LearnedGrader,
    features: npt.ArrayLike,
    confirmed: Sequence[GradeLevel],
    *,
    level_probability: float = 0.5,
    min_examples: int = 50,
    margin: float = 0.02,
) -> ReplaceDecision:
    """Replace only with enough held-out examples, a higher accuracy by ``margin``, and no larger grade error."""
    x = _as_matrix(features)
    truth = _labels(confirmed)
    if len(x) != len(truth):
        raise ValueError(f"{len(x)} feature rows but {len(truth)} confirmed grades")
    n = len(truth)
    if n == 0:
        return ReplaceDecision(False, 0, 0.0, 0.0, 0.0, 0.0, "no held-out confirmed examples")
    ours = np.array([CONDITION_GRADES.index(g) for g in learned.predict_levels(x, level_probability)])
    theirs = np.array([CONDITION_GRADES.index(g) for g in rubric_levels(x, level_probability)])
    acc_l, acc_r = float((ours == truth).mean()), float((theirs == truth).mean())
    err_l, err_r = float(np.abs(ours - truth).mean()), float(np.abs(theirs - truth).mean())
    if n < min_examples:
        verdict, why = False, f"only {n} held-out examples, {min_examples} needed"
    elif acc_l < acc_r + margin:
        verdict, why = False, f"accuracy {acc_l:.3f} does not beat the rubric's {acc_r:.3f} by {margin:.3f}"
    elif err_l > err_r:
        verdict, why = False, f"mean grade error {err_l:.3f} is worse than the rubric's {err_r:.3f}"
    else:
        verdict, why = True, f"accuracy {acc_l:.3f} beats the rubric's {acc_r:.3f} on {n} held-out examples"
    return ReplaceDecision(verdict, n, acc_l, acc_r, err_l, err_r, why)


def load_learned_graders(directory: Path | None) -> dict[str, LearnedGrader]:
    """Every ``<category>.pt`` in the folder whose grader beat the rubric; none when the folder is None."""
    if directory is None:
        return {}
    if not directory.is_dir():
        raise FileNotFoundError(f"learned grader folder not found: {directory}")
    out: dict[str, LearnedGrader] = {}
    for path in sorted(directory.glob("*.pt")):
        grader = LearnedGrader.load(path)
        if grader.category != path.stem:
            raise ValueError(f"{path}: holds a grader for {grader.category!r}, not {path.stem!r}")
        if grader.replaces_rubric:
            out[grader.category] = grader
    return out
