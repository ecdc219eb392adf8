"""Realistic returns from ``data/scenarios.yaml``, end to end: pictures, detections, grade, disposition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from inspector.disposition import Catalogue, Policy, load_catalogue, load_policy, recommend
from inspector.grading import FamilyPrediction, RubricSet, assess_quality, grade_item, load_rubrics
from inspector.items import ItemInfo
from inspector.types import Detections, DispositionPath, GradeLevel, Image
from tests.builders import dets
from tests.unit.grading_builders import ITEM_BOX, at

SCENARIOS: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "data" / "scenarios.yaml").read_text())


def picture(kind: str, seed: int) -> Image:
    """A synthetic bench picture of the kind named in the scenario."""
    rng = np.random.default_rng(seed)
    img = np.full((480, 640, 3), 120, np.uint8) + rng.integers(0, 14, (480, 640, 3), dtype=np.uint8)
    cv2.rectangle(img, (200, 80), (440, 420), (50, 50, 55), -1)
    cv2.rectangle(img, (215, 100), (425, 400), (95, 70, 40), -1)
    cv2.putText(img, "SKU", (260, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (220, 220, 220), 2)
    if kind == "ok":
        return img
    if kind == "dark":
        return (img * 0.15).astype(np.uint8)
    if kind == "blurred":
        return np.asarray(cv2.GaussianBlur(img, (0, 0), 4), dtype=np.uint8)
    if kind == "overexposed":
        return np.asarray(cv2.add(img, np.full(img.shape, 170, np.uint8)), dtype=np.uint8)
    raise ValueError(f"unknown picture kind {kind!r}")


def build_view(spec: dict[str, Any]) -> Detections:
    rows = [("item", 0.96, ITEM_BOX)] if spec.get("item", True) else []
    for d in spec.get("defects", []):
        x1, y1, x2, y2 = at(d["at"][0], d["at"][1], d["area"])
        rows.append((d["class"], d["conf"], (x1, y1, x2, y2)))
    return dets(rows)


@pytest.fixture(scope="module")
def world() -> tuple[RubricSet, Policy, Catalogue]:
    return load_rubrics(), load_policy(), load_catalogue()


def test_the_scenario_file_is_large_and_well_formed(world: tuple[RubricSet, Policy, Catalogue]) -> None:
    _, _, catalogue = world
    names = [s["name"] for s in SCENARIOS]
    assert len(names) >= 30 and len(set(names)) == len(names)
    paths = {s["expect"]["path"] for s in SCENARIOS}
    grades = {s["expect"].get("grade") for s in SCENARIOS} - {None}
    assert {p.value for p in DispositionPath} <= paths, {p.value for p in DispositionPath} - paths
    assert {g.value for g in GradeLevel} <= grades, {g.value for g in GradeLevel} - grades
    listed = [s["sku"] for s in SCENARIOS if not s["sku"].startswith("ZZ-")]
    assert all(sku in catalogue for sku in listed)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(world: tuple[RubricSet, Policy, Catalogue], scenario: dict[str, Any]) -> None:
    rubric, policy, catalogue = world
    item = ItemInfo(
        sku=scenario["sku"],
        flags=frozenset(scenario.get("item", {}).get("flags", [])),
        **{k: v for k, v in scenario.get("item", {}).items() if k != "flags"},
    )
    sku = catalogue.resolve(scenario["sku"], item)
    views = [build_view(v) for v in scenario["views"]]
    qualities = [assess_quality(picture(kind, i), rubric.quality) for i, kind in enumerate(scenario.get("images", []))]
    family = FamilyPrediction(**scenario["family"]) if "family" in scenario else None

    grade = grade_item(views, rubric=rubric, sku=sku, item=item, qualities=qualities, family=family)
    decision = recommend(grade, sku=sku, item=item, policy=policy)

    expect = scenario["expect"]
    story = [r.text for r in (*grade.reasons, *decision.reasons)]
    if "grade" in expect:
        assert grade.level.value == expect["grade"], story
    assert decision.path.value == expect["path"], story
    if "rule" in expect:
        assert decision.rule == expect["rule"], story
    if "reason" in expect:
        assert any(expect["reason"] in t for t in story), story
    if "better" in expect:
        ev = {a.path.value: a.expected_value for a in decision.alternatives}
        hi, lo = expect["better"]
        assert ev[hi] > ev[lo], (ev[hi], ev[lo])
    assert decision.policy_version == policy.version
    assert grade.rubric_version == rubric.version
