"""Condition grading: image quality, per-category rubrics, the grader (pure) and its loaders.

Nothing here imports torch; the family classifier and the learned grader are
imported from their own modules when a model is used.
"""

from __future__ import annotations

from inspector.grading.assessment import Assessment, assess_item, condition_probabilities
from inspector.grading.base import FamilyPrediction, Finding
from inspector.grading.blindspots import BlindSpots
from inspector.grading.grader import GradeModel, grade_item
from inspector.grading.loaders import load_rubrics
from inspector.grading.quality import ImageQuality, QualityThresholds, assess_quality
from inspector.grading.rubric import CategoryRubric, RubricSet

__all__ = [
    "Assessment",
    "BlindSpots",
    "CategoryRubric",
    "FamilyPrediction",
    "Finding",
    "GradeModel",
    "ImageQuality",
    "QualityThresholds",
    "RubricSet",
    "assess_item",
    "assess_quality",
    "condition_probabilities",
    "grade_item",
    "load_rubrics",
]
