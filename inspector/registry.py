"""The model registry under ``models/``: versions, the active pointer, resolution.

Layout: ``models/<version>/weights.pt`` (+ ``meta.json``, ``card.md``, recipe) and
``models/active.json`` naming the promoted version. The station serves the active
version; a spec may also be a registered version name or a path to a ``.pt`` file.
"""

from __future__ import annotations

import json
from pathlib import Path

from inspector.detect.base import DetectorError
from inspector.paths import models_dir

ACTIVE_FILE = "active.json"
WEIGHTS_FILE = "weights.pt"


def active_version(root: Path | None = None) -> str | None:
    """The promoted version named by ``active.json``, or None when nothing is promoted."""
    path = (root or models_dir()) / ACTIVE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DetectorError(f"{path}: unreadable active-model pointer ({exc})") from exc
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or not version:
        raise DetectorError(f"{path}: no 'version' in the active-model pointer")
    return version


def resolve_weights(spec: str | None, root: Path | None = None) -> tuple[Path, str | None]:
    """Turn a model spec (None, a version name, or a .pt path) into a weights file and its version."""
    root = root or models_dir()
    if spec is None:
        version = active_version(root)
        if version is None:
            raise DetectorError(f"no active model in {root}: train one with 'make model' or pass --model PATH")
        spec = version
    as_path = Path(spec)
    if as_path.suffix == ".pt" or as_path.is_file():
        if not as_path.is_file():
            raise DetectorError(f"model file not found: {as_path}")
        return as_path, None
    weights = root / spec / WEIGHTS_FILE
    if not weights.is_file():
        raise DetectorError(f"model version {spec!r} has no weights at {weights}")
    return weights, spec
