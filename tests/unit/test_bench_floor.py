"""The overhead floor in ``make bench``: each part does the work it claims, and the sum is theirs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspector.bench import floor
from inspector.bench.bare import bare_app

JPEG = b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9"


def test_bare_route_reads_every_upload() -> None:
    client = TestClient(bare_app())
    r = client.post(
        "/v1/inspections",
        files=[("images", ("a.jpg", JPEG, "image/jpeg")), ("images", ("b.jpg", JPEG[:100], "image/jpeg"))],
    )
    assert r.status_code == 201
    assert r.json()["bytes"] == [len(JPEG), 100]


def test_durable_write_keeps_every_upload(tmp_path: Path) -> None:
    out = floor.durable_write_floor(JPEG, tmp_path, 4)
    assert out["n"] == 4 and out["p50_ms"] > 0
    files = sorted(tmp_path.glob("*.jpg"))
    assert len(files) == 4 + 3  # and the three warm-up writes
    assert all(f.read_bytes() == JPEG for f in files)
    assert not list(tmp_path.glob("*.tmp"))
    with sqlite3.connect(tmp_path / "floor.db") as db:
        assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 7


def test_http_floor_times_a_real_server() -> None:
    out = floor.http_floor(JPEG, 3)
    assert out["n"] == 3 and 0 < out["p50_ms"] < 5000


def test_floor_is_the_sum_of_its_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def part(ms: float) -> Any:
        return lambda *a, **k: {"p50_ms": ms}

    monkeypatch.setattr(floor, "http_floor", part(2.5))
    monkeypatch.setattr(floor, "durable_write_floor", part(0.5))
    out = floor.overhead_floor(JPEG, tmp_path, 3, decode_ms=3.0, forward_ms=12.0)
    assert out["floor_ms"] == 6.0
    assert out["floor_ratio"] == 0.5
    assert out["allowed_ms_at_25_percent"] == 3.0
