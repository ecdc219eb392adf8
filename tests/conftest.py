"""Suite-wide set-up: the network guard, offline ultralytics, shared fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["tests.netguard"]


def pytest_configure(config: pytest.Config) -> None:
    """Make ultralytics offline before any test module can import it.

    Its settings and font live in a throw-away cache folder, not the user's home.
    """
    os.environ.setdefault("INSPECTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inspector-cache-"))
    from inspector import runtime

    runtime.configure(int(os.environ.get("INSPECTOR_THREADS", "0")) or None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
