"""The CLI's error paths: one line on stderr, non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_help_lists_the_verbs() -> None:
    r = run("--help")
    assert r.returncode == 0
    for verb in ("serve", "detect"):
        assert verb in r.stdout


def _good_image(tmp_path: Path) -> Path:
    p = tmp_path / "ok.jpg"
    cv2.imwrite(str(p), np.full((48, 64, 3), 100, np.uint8))
    return p


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t: ["detect", str(t / "missing.jpg")], "no such file"),
        (lambda t: ["detect", str(t)], "not a file"),
        (lambda t: ["detect", str(_write(t / "zero.jpg", b""))], "empty file"),
        (lambda t: ["detect", str(_write(t / "junk.jpg", b"\x00garbage" * 50))], "not a readable image"),
        (lambda t: ["detect", str(_truncated(t))], "corrupt or truncated"),
        (lambda t: ["detect", str(_good_image(t)), "--model", str(t / "nope.pt")], "model file not found"),
        (lambda t: ["detect", str(_good_image(t)), "--model", str(_write(t / "bad.pt", b"junk"))], "cannot load model"),
    ],
)
def test_detect_errors_are_one_line(tmp_path: Path, make_args: object, message: str) -> None:
    r = run(*make_args(tmp_path))  # type: ignore[operator]
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(tmp_path: Path) -> Path:
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    assert ok
    return _write(tmp_path / "trunc.jpg", buf.tobytes()[: len(buf) // 2])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--recipe", "x.yaml"], "training a detector needs --data"),
        (["train", "--task", "nope"], "unknown task"),
        (["detect"], "Missing argument"),
    ],
)
def test_usage_errors_exit_non_zero_without_traceback(args: list[str], message: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert message in r.stderr


def test_piped_listings_never_cut_a_version_name_and_json_lists_them_all() -> None:
    """`inspector models list | cat` at 80 columns keeps every name whole; --json gives the same versions."""
    from inspector import registry

    versions = registry.list_versions(registry.root_dir(None))
    assert versions, "the repository ships at least one version"
    env = {**os.environ, "COLUMNS": "80"}
    table = subprocess.run(
        [sys.executable, "-m", "inspector", "models", "list"], capture_output=True, text=True, timeout=120, env=env
    )
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout
    assert all(v in table.stdout for v in versions)
    listed = subprocess.run(
        [sys.executable, "-m", "inspector", "models", "list", "--json"], capture_output=True, text=True, timeout=120
    )
    doc = json.loads(listed.stdout)
    assert [v["version"] for v in doc["versions"]] == versions
    assert sum(v["active"] for v in doc["versions"]) == 1
