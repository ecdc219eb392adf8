"""Backup and restore: an online backup taken while inspections stream in restores into a station that serves it.

A writer thread keeps POSTing inspections to the real app while ``backup``
runs; the backup's first image read waits until two more are acknowledged, so
the station is shown to take inspections during the backup (a backup that
blocked writers would time out there). The backup is restored with ``inspector restore``
into a fresh folder: every inspection acknowledged before the backup started
is there with its images byte for byte, so is every image the restored
database names, SQLite's integrity check passes, and a station started on the
restored folder serves the inspections and their images with the same keys.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from inspector.cli import app as cli
from inspector.config import StorageConfig
from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from inspector.store import Store
from inspector.store.backup import IMAGES_PART, MANIFEST, backup
from inspector.store.images import FolderImageStore, ImageStore
from tests.api.conftest import Api, add_keys, jpeg, make_settings, served_app

BEFORE = 6  # inspections acknowledged before the backup starts


@dataclass
class Writer:
    """A client POSTing one inspection after another, each with its own view, until stopped."""

    api: Api
    acked: list[tuple[float, str, str]] = field(default_factory=list)  # (time, inspection id, view sha256)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        seed = 0
        while not self.stop.is_set():
            seed += 1
            view = jpeg(seed=seed)
            r = self.api.inspect([view], None, "wms", **{"Idempotency-Key": f"writer-{seed}"})
            if r.status_code != 201:
                self.errors.append(f"{r.status_code} {r.text[:200]}")
                continue
            self.acked.append((time.monotonic(), r.json()["id"], hashlib.sha256(view).hexdigest()))

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline and not self.errors:
            time.sleep(0.02)
        assert len(self.acked) >= n, self.errors


class SlowImages:
    """The station's image folder, its first file handed to the backup only once ``hold`` returns (a slow disk)."""

    def __init__(self, inner: ImageStore, hold: Callable[[], None]) -> None:
        self.inner = inner
        self.hold: Callable[[], None] | None = hold

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def path_for(self, digest: str) -> Path:
        if self.hold is not None:
            self.hold, hold = None, self.hold
            hold()
        return self.inner.path_for(digest)


@pytest.fixture
def station(tmp_path: Path, detector: Detector) -> Iterator[Api]:
    settings = make_settings(tmp_path / "live")
    app = served_app(settings, build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def named_digests(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT sha256 FROM inspection_images")}


def test_a_backup_under_load_restores_into_a_serving_station(station: Api, tmp_path: Path, detector: Detector) -> None:
    writer = Writer(station)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        writer.wait_for(BEFORE)
        before = list(writer.acked)
        started = time.monotonic()
        store = station.app.state.store
        slow = SlowImages(store.images, hold=lambda: writer.wait_for(len(writer.acked) + 2))
        manifest = backup(station.settings.storage.resolved_db_url(), slow, tmp_path / "backup")
        ended = time.monotonic()
        writer.wait_for(len(writer.acked) + 1)  # the station still takes inspections after the backup
    finally:
        writer.stop.set()
        thread.join(60)
    during = [a for a in writer.acked if started <= a[0] <= ended]
    assert len(during) >= 2, "the station took no inspection while the backup ran"
    assert not writer.errors

    restored = tmp_path / "restored"
    r = CliRunner().invoke(cli, ["restore", str(tmp_path / "backup"), "--data-dir", str(restored)])
    assert r.exit_code == 0, r.output
    db = restored / "inspector.db"
    assert integrity(db) == "ok"
    images = FolderImageStore(restored / "images")
    live = store.images
    for digest in named_digests(db):  # whatever the snapshot holds, its images came with it, with their age
        assert hashlib.sha256(images.get(digest)).hexdigest() == digest
        assert int(images.path_for(digest).stat().st_mtime) == int(live.path_for(digest).stat().st_mtime)
    assert manifest["image_files"] == len(named_digests(db)) and not manifest["missing_images"]

    settings = make_settings(restored.parent / "serve")
    settings.storage.data_dir = restored
    app = served_app(settings, build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        for _, iid, digest in before:
            got = client.get(f"/v1/inspections/{iid}", headers=station.h())  # the keys came back too
            assert got.status_code == 200, got.text
            assert got.json()["views"][0]["image"]["sha256"] == digest
            view = client.get(f"/v1/inspections/{iid}/images/0", headers=station.h())
            assert view.status_code == 200 and hashlib.sha256(view.content).hexdigest() == digest
        again = client.post(
            "/v1/inspections", headers=station.h("wms"), files=[("images", ("v.jpg", jpeg(seed=999), "image/jpeg"))]
        )
        assert again.status_code == 201, again.text
    print(
        f"\nbackup under load: {len(before)} acknowledged before, {len(during)} during the "
        f"{ended - started:.2f} s backup, {manifest['counts']['inspections']} in the snapshot, all restored"
    )


# ------------------------------------------------------------------ refusals


def _backup_of_empty(tmp: Path) -> Path:
    """A backup of a station with an empty, migrated store (in ``tmp/src``), in ``tmp/b``."""
    Store(StorageConfig(data_dir=tmp / "src")).open().close()
    r = CliRunner().invoke(cli, ["backup", str(tmp / "b"), "--data-dir", str(tmp / "src")])
    assert r.exit_code == 0, r.output
    return tmp / "b"


def _in_use(tmp: Path) -> list[str]:
    (tmp / "dst").mkdir()
    (tmp / "dst" / "inspector.db").write_bytes(b"a station's database")
    return ["restore", str(tmp / "b"), "--data-dir", str(tmp / "dst")]


def _damaged(tmp: Path) -> list[str]:
    tar = tmp / "b" / IMAGES_PART
    data = bytearray(tar.read_bytes())
    data[-1] ^= 1
    tar.write_bytes(bytes(data))
    return ["restore", str(tmp / "b"), "--data-dir", str(tmp / "dst")]


def _unfinished(tmp: Path) -> list[str]:
    (tmp / "b" / MANIFEST).unlink()
    return ["restore", str(tmp / "b"), "--data-dir", str(tmp / "dst")]


def _over_a_backup(tmp: Path) -> list[str]:
    return ["backup", str(tmp / "b"), "--data-dir", str(tmp / "src")]


def _postgres(tmp: Path) -> list[str]:
    return ["backup", str(tmp / "dst"), "--db", "postgresql://inspector@db.example/inspector"]


REFUSALS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "restore over a data folder in use": (_in_use, "is not empty"),
    "restore from a damaged image tar": (_damaged, "is damaged"),
    "restore from an unfinished backup": (_unfinished, "holds no backup"),
    "backup over another backup": (_over_a_backup, "never written over another"),
    "backup of a PostgreSQL station": (_postgres, "pg_dump"),
}


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize(("setup", "message"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_refusals_say_why_and_write_nothing(tmp_path: Path, setup: Callable[[Path], list[str]], message: str) -> None:
    _backup_of_empty(tmp_path)
    args = setup(tmp_path)
    before = {d: _listing(tmp_path / d) for d in ("dst", "b")}

    r = CliRunner().invoke(cli, args)

    assert r.exit_code != 0 and message in str(r.exception), (r.output, r.exception)
    assert {d: _listing(tmp_path / d) for d in ("dst", "b")} == before


def test_force_restores_over_a_data_folder(tmp_path: Path) -> None:
    backup_dir = _backup_of_empty(tmp_path)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "inspector.db").write_bytes(b"not a database")
    (dst / "inspector.db-wal").write_bytes(b"an old log")

    r = CliRunner().invoke(cli, ["restore", str(backup_dir), "--data-dir", str(dst), "--force"])

    assert r.exit_code == 0, r.output
    assert integrity(dst / "inspector.db") == "ok" and not (dst / "inspector.db-wal").exists()
