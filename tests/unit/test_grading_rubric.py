"""Rubric files: the shipped set loads, and every kind of mistake gets an error naming it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from inspector.config import GradingConfig
from inspector.grading import load_rubrics
from inspector.grading.loaders import RUBRICS_DIR
from inspector.grading.rubric import GENERIC, CategoryRubric, DefectRule, RubricSet
from inspector.items import FAMILIES
from inspector.labelmap import DEFECT_CLASSES, default_labelmap
from inspector.types import GradeLevel


def test_shipped_rubrics_cover_every_family_and_defect() -> None:
    rs = load_rubrics()
    assert set(rs.rubrics) == {*FAMILIES, GENERIC}
    assert set(DEFECT_CLASSES) == set(default_labelmap().defect_names)
    for rubric in rs.rubrics.values():
        assert set(rubric.defects) == set(DEFECT_CLASSES)
    assert rs.for_category(None).category == GENERIC
    assert rs.for_category("shoe").category == "shoe"
    assert GradingConfig().rubric_dir is None


def test_zone_map_by_position_and_view() -> None:
    phone = load_rubrics().rubrics["phone"]
    assert phone.zone_of(0.5, 0.5, 0) == "screen"
    assert phone.zone_of(0.5, 0.5, 1) == "back"
    assert phone.zone_of(0.02, 0.5, 0) == "frame"
    assert phone.zone_of(0.5, 0.99, 1) == "frame"
    shoe = load_rubrics().rubrics["shoe"]
    assert (shoe.zone_of(0.5, 0.8, 0), shoe.zone_of(0.5, 0.5, 0)) == ("sole", "upper")


@pytest.mark.parametrize(
    ("area", "count", "checks"),
    [
        ([(0.0, 1.0), (0.05, 2.0)], [], [(0.0, 0, 1.0), (0.049, 0, 1.0), (0.05, 0, 2.0), (0.5, 0, 2.0)]),
        ([(0.0, 0.5)], [(3, 2.0), (5, 3.0)], [(0.1, 2, 0.5), (0.1, 3, 2.0), (0.1, 9, 3.0)]),
    ],
)
def test_steps(
    area: list[tuple[float, float]], count: list[tuple[int, float]], checks: list[tuple[float, int, float]]
) -> None:
    rule = DefectRule.model_validate(
        {
            "area": [{"min_area": a, "severity": s} for a, s in area],
            "count": [{"min_count": n, "severity": s} for n, s in count],
        }
    )
    for rel_area, n, expected in checks:
        assert max(rule.area_severity(rel_area), rule.count_severity(n)) == expected


def _phone() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((RUBRICS_DIR / "phone.yaml").read_text())
    return data


def _edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = _phone()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["defects"]["scratch"].update(
                area=[{"min_area": 0.05, "severity": 1}, {"min_area": 0.0, "severity": 2}]
            ),
            "increasing order",
        ),
        (
            lambda d: d["defects"]["scratch"].update(
                area=[{"min_area": 0.0, "severity": 2}, {"min_area": 0.05, "severity": 1}]
            ),
            "must not decrease",
        ),
        (lambda d: d["defects"]["scratch"].update(area=[{"min_area": 0.01, "severity": 1}]), "start at min_area 0"),
        (
            lambda d: d["defects"]["scratch"].update(
                count=[{"min_count": 4, "severity": 2}, {"min_count": 2, "severity": 3}]
            ),
            "increasing order",
        ),
        (lambda d: d["defects"]["scratch"].update(zones={"keyboard": 1}), "unknown zones"),
        (lambda d: d["defects"].pop("crack"), "missing crack"),
        (lambda d: d["defects"].update(smudge=d["defects"]["stain"]), "unknown smudge"),
        (lambda d: d.update(zones=d["zones"][:2]), "last zone must cover"),
        (lambda d: d.update(zones=[*d["zones"], {"name": "screen"}]), "unique"),
        (lambda d: d["zones"][0].update(regions=[[0.5, 0.5, 0.4, 0.9]]), "x1 < x2"),
        (lambda d: d["flags"].update(sticky=1.0), "unknown flags"),
        (lambda d: d.update(grades={"B": 2, "C": 1, "D": 3}), "0 < B < C < D"),
        (lambda d: d.update(category="spaceship"), "unknown category"),
        (lambda d: d.update(colour="red"), "Extra inputs are not permitted"),
        (lambda d: d["defects"]["dent"].update(area=[{"min_area": 0.0, "severity": -1}]), "greater than or equal to 0"),
    ],
)
def test_category_rubric_errors(change: Callable[[dict[str, Any]], None], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CategoryRubric.model_validate(_edit(change))


def test_rubric_set_needs_every_category_under_its_own_name() -> None:
    shipped = load_rubrics()
    rubrics = {k: v.model_dump() for k, v in shipped.rubrics.items()}
    with pytest.raises(ValidationError, match="missing for categories: shoe"):
        RubricSet.model_validate({"version": "x", "rubrics": {k: v for k, v in rubrics.items() if k != "shoe"}})
    with pytest.raises(ValidationError, match="filed under 'shoe' is for category 'phone'"):
        RubricSet.model_validate({"version": "x", "rubrics": {**rubrics, "shoe": rubrics["phone"]}})


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "rubrics"
    shutil.copytree(RUBRICS_DIR, target)
    return target


def test_a_copied_folder_loads_and_keeps_its_version(folder: Path) -> None:
    index = folder / "rubric.yaml"
    index.write_text(index.read_text().replace('version: "2026.12-1"', 'version: "site-7"'))
    rs = load_rubrics(folder)
    assert rs.version == "site-7"
    assert rs.rubrics["phone"].grades.level_of(2.5) is GradeLevel.C


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (lambda f: shutil.rmtree(f), FileNotFoundError, "rubric folder not found"),
        (lambda f: (f / "shoe.yaml").unlink(), FileNotFoundError, "shoe.yaml"),
        (lambda f: (f / "shoe.yaml").write_text("category: [shoe\n"), ValueError, "not valid YAML"),
        (lambda f: (f / "shoe.yaml").write_text("- a list\n"), ValueError, "expected a mapping"),
        (
            lambda f: (f / "shoe.yaml").write_text((f / "phone.yaml").read_text()),
            ValueError,
            "'category' must be 'shoe'",
        ),
        (lambda f: (f / "toaster.yaml").write_text("category: toaster\n"), ValueError, "unexpected rubric files"),
        (
            lambda f: (f / "rubric.yaml").write_text("version: x\nrubrics: {}\n"),
            ValueError,
            "their own <category>.yaml",
        ),
        (lambda f: (f / "rubric.yaml").write_text("version: x\nmin_confidence: 2\n"), ValueError, "min_confidence"),
        (
            lambda f: (f / "rubric.yaml").write_text("version: x\nquality: {min_brightness: -5}\n"),
            ValueError,
            "quality.min_brightness",
        ),
        (
            lambda f: (f / "garment.yaml").write_text(
                (f / "garment.yaml").read_text().replace("hem: -0.5", "collar: 1")
            ),
            ValueError,
            "garment.*unknown zones",
        ),
    ],
)
def test_loader_errors_name_the_problem(
    folder: Path, damage: Callable[[Path], object], error: type[Exception], message: str
) -> None:
    damage(folder)
    with pytest.raises(error, match=message):
        load_rubrics(folder)
