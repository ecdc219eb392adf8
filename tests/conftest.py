"""Suite-wide set-up: the network guard, offline ultralytics, shared fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["tests.netguard"]
_CACHE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Make ultralytics offline before any test module can import it.

    Its settings and font live in a throw-away cache folder, not the user's home.
    """
    if "INSPECTOR_CACHE_DIR" not in os.environ:
        cache = tempfile.mkdtemp(prefix="inspector-cache-")
        os.environ["INSPECTOR_CACHE_DIR"] = cache
        config.stash[_CACHE] = cache
    from inspector import runtime

    runtime.configure(int(os.environ.get("INSPECTOR_THREADS", "0")) or None)


def pytest_unconfigure(config: pytest.Config) -> None:
    cache = config.stash.get(_CACHE, None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
