"""Read rubric files: ``rubric.yaml`` (shared settings) plus one ``<category>.yaml`` per category.

The only module of the grading package that touches files. Errors name the file
and the field so that a returns manager can fix the rubric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from inspector.grading.rubric import GENERIC, RubricSet
from inspector.items import FAMILIES
from inspector.yamlfile import read_mapping

RUBRICS_DIR = Path(__file__).resolve().parent / "rubrics"
INDEX_FILE = "rubric.yaml"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"rubric file not found: {path}")
    return read_mapping(path)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())


def load_rubrics(directory: Path | None = None) -> RubricSet:
    """Load and validate a rubric folder (None: the rubrics shipped with the station)."""
    folder = directory or RUBRICS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"rubric folder not found: {folder}")
    index = _read_yaml(folder / INDEX_FILE)
    if "rubrics" in index:
        raise ValueError(
            f"{folder / INDEX_FILE}: categories go in their own <category>.yaml files, not under 'rubrics'"
        )
    rubrics: dict[str, Any] = {}
    for category in (*FAMILIES, GENERIC):
        path = folder / f"{category}.yaml"
        raw = _read_yaml(path)
        if raw.get("category") != category:
            raise ValueError(f"{path}: 'category' must be {category!r}, got {raw.get('category')!r}")
        rubrics[category] = raw
    extra = sorted(p.name for p in folder.glob("*.yaml") if p.stem not in rubrics and p.name != INDEX_FILE)
    if extra:
        raise ValueError(f"{folder}: unexpected rubric files {extra}; categories are {', '.join((*FAMILIES, GENERIC))}")
    try:
        return RubricSet.model_validate({**index, "rubrics": rubrics})
    except ValidationError as exc:
        raise ValueError(f"rubric folder {folder}: {_errors(exc)}") from None
