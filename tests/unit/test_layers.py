"""The import-layer check (import-linter, configured in pyproject.toml): it passes on the tree and catches a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's contracts over the packages in ``tree`` (on the path before the installed ones)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, to plant imports in."""
    for pkg in ("inspector", "station"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_its_layers(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        # the ground imports the API
        ("inspector/types.py", "import inspector.api.app", "each layer imports only the layers below it"),
        # inference imports training
        ("inspector/detect/base.py", "import inspector.training", "each layer imports only the layers below it"),
        # pure grading reaches for the pipeline, lazily inside a function
        ("inspector/grading/rubric.py", "def _late() -> None:\n    import inspector.pipeline", "layers below it"),
        # the API mounts the station itself
        ("inspector/api/app.py", "import station.web", "nothing in inspector imports it"),
    ],
)
def test_an_upward_import_fails_the_check(tree: Path, module: str, planted: str, contract: str) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n\n{planted}\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout or contract in result.stdout.split("Broken contracts")[-1]
    planted_in = module.removesuffix(".py").replace("/", ".")
    assert planted_in in result.stdout


def test_a_cycle_inside_a_package_fails_the_check(tree: Path) -> None:
    # two siblings of the same layer that import each other
    # the labelmap reads its file's place from paths; paths importing the labelmap closes a loop
    paths = tree / "inspector" / "paths.py"
    paths.write_text(paths.read_text() + "\n\nimport inspector.labelmap\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "no import cycle" in result.stdout.split("Broken contracts")[-1]
