"""Where the station finds its shipped files (labelmap, models) and writes its data."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def datasets_dir() -> Path:
    """The ``datasets/`` folder: labelmap, dataset specs and data cards."""
    return Path(os.environ.get("INSPECTOR_DATASETS_DIR", REPO_ROOT / "datasets"))


def models_dir() -> Path:
    """The model registry (``models/``): shipped weights, recipes and cards."""
    return Path(os.environ.get("INSPECTOR_MODELS_DIR", REPO_ROOT / "models"))


def cache_dir() -> Path:
    """A writable cache for third-party configuration (ultralytics settings, its font)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inspector"
    return Path(os.environ.get("INSPECTOR_CACHE_DIR", default))
