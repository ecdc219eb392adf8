"""``inspector recommend``: JSON and table output, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli import app
from inspector.cli.disposition import parse_grade
from inspector.types import GradeLevel

runner = CliRunner()


def run_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["recommend", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("args", "path", "rule"),
    [
        (["--grade", "A", "--sku", "PH-X900"], "RESTOCK", None),
        (["--grade", "A", "--sku", "PH-X900", "--flag", "opened"], "OPEN_BOX", "opened_not_new"),
        (["--grade", "A", "--sku", "BT-SHP01", "--flag", "opened"], "RECYCLE", "hygiene_opened"),
        (["--grade", "B", "--sku", "PH-X900", "--flag", "battery_swollen"], "HAZARDOUS_DISPOSAL", "battery_hazard"),
        (
            ["--grade", "B", "--sku", "PH-X900", "--flag", "not_functional", "--days-since-sale", "3"],
            "RETURN_TO_VENDOR",
            "vendor_return",
        ),
        (["--grade", "b", "--sku", "NEW-1", "--category", "garment", "--price", "40"], "OPEN_BOX", None),
        (["--grade", "A", "--sku", "PH-X900", "--probabilities", "A=0.5,C=0.5"], "MANUAL_REVIEW", "expected_regret"),
    ],
)
def test_recommend_json(args: list[str], path: str, rule: str | None) -> None:
    out = run_json(*args)
    disposition = out["disposition"]
    assert isinstance(disposition, dict)
    assert (disposition["path"], disposition["rule"]) == (path, rule)
    assert disposition["policy_version"] == "2026.07-1"
    assert len(disposition["alternatives"]) == 12


def test_recommend_with_own_catalogue_and_policy(tmp_path: Path) -> None:
    (tmp_path / "cat.json").write_text(json.dumps([{"sku": "Z9", "category": "shoe", "price_new": 50}]))
    policy = (Path(__file__).parents[2] / "inspector/disposition/policy.yaml").read_text()
    (tmp_path / "p.yaml").write_text(policy.replace('version: "2026.07-1"', 'version: "site-42"'))
    out = run_json(
        "--grade", "A", "--sku", "Z9", "--catalogue", str(tmp_path / "cat.json"), "--policy", str(tmp_path / "p.yaml")
    )
    assert out["disposition"]["policy_version"] == "site-42"  # type: ignore[index]
    assert out["sku"]["price_new"] == 50.0  # type: ignore[index]


def test_recommend_table() -> None:
    result = runner.invoke(app, ["recommend", "--grade", "C", "--sku", "PH-X900"])
    assert result.exit_code == 0, result.output
    assert "REFURBISH" in result.stdout and "alternatives" in result.stdout and "2026.07-1" in result.stdout


@pytest.mark.parametrize(
    ("level", "probs", "expected"),
    [
        ("B", None, {GradeLevel.B: 1.0}),
        ("c", "A=0.2, C=0.8", {GradeLevel.A: 0.2, GradeLevel.C: 0.8}),
        ("C", "A=0.2,C=0.795", {GradeLevel.A: 0.2 / 0.995, GradeLevel.C: 0.795 / 0.995}),
    ],
)
def test_parse_grade(level: str, probs: str | None, expected: dict[GradeLevel, float]) -> None:
    g = parse_grade(level, probs)
    assert g.probabilities == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grade", "E", "--sku", "PH-X900"], "unknown grade 'E'"),
        (["--grade", "A", "--sku", "NOPE-1"], "unknown SKU 'NOPE-1'"),
        (["--grade", "A", "--sku", "PH-X900", "--probabilities", "A=0.5"], "must sum to 1"),
        (["--grade", "A", "--sku", "PH-X900", "--probabilities", "A:1"], "GRADE=P pairs"),
        (["--grade", "A", "--sku", "PH-X900", "--flag", "sticky"], "unknown item flags"),
        (["--grade", "A", "--sku", "PH-X900", "--policy", "/nonexistent/p.yaml"], "policy file not found"),
        (["--grade", "A", "--sku", "X", "--category", "phones//android", "--price", "3"], "empty level"),
    ],
)
def test_recommend_errors_are_one_line(args: list[str], message: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "inspector", "recommend", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in lines[0]
