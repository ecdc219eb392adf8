"""Reading a YAML mapping from a file, once: every config and data file's errors name the file and what it expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: Path, expected: str = "expected a mapping at the top level") -> dict[str, Any]:
    """The file's top-level mapping; ``ValueError`` naming ``path`` for bad YAML or another shape (``expected``)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: {expected}")
    return raw
