"""Disk full: the image disk or the database disk of a running station fills up, then is freed.

The database (SQLite) and the images each sit on a real size-limited tmpfs. Filling one makes
the real ENOSPC / "database or disk is full" happen under requests. Each case asserts what the
client is told (507 problem details, code ``storage_full``), that no half-written image, orphan
view or row is left, that ``/v1/ready`` and the operator page's status say so, that every
inspection acknowledged before is still there byte for byte, and that once space is freed the
same request succeeds without a restart.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from inspector.store.images import sha256_hex
from inspector.types import Frame
from tests.api.conftest import Api, WrappedPipeline, add_keys, jpeg, make_settings, served_app
from tests.hardening.mounts import fill, tmpfs

PROBLEM_JSON = "application/problem+json"


class Counting(WrappedPipeline):
    """The real pipeline, counting its runs (a refusal up front must not run the model)."""

    runs = 0

    def before(self, frames: Sequence[Frame]) -> None:
        self.runs += 1


@dataclass
class Bench:
    api: Api
    db_disk: Path
    image_disk: Path
    pipeline: Counting

    @property
    def image_root(self) -> Path:
        return self.image_disk / "images"

    def disk(self, which: str) -> Path:
        return self.db_disk if which == "database" else self.image_disk


@pytest.fixture
def bench(tmp_path: Path, detector: Detector) -> Iterator[Bench]:
    """A station whose database and images are on two 16 MB tmpfs, with no free-space threshold."""
    with tmpfs(tmp_path / "db-disk", 16) as db_disk, tmpfs(tmp_path / "image-disk", 16) as image_disk:
        settings = make_settings(db_disk)
        settings.storage.image_dir = image_disk / "images"
        settings.storage.min_free_mb = 0  # the real ENOSPC; the threshold has a test of its own
        pipeline = Counting(build_pipeline(settings, detector=detector))
        app = served_app(settings, pipeline)
        with TestClient(app) as client:
            api = Api(app=app, client=client, settings=settings, keys=add_keys(app))
            yield Bench(api, db_disk, image_disk, pipeline)


def views(seed: int, n: int = 2) -> list[bytes]:
    """``n`` distinct views of 640x480 (about 200 KB each)."""
    return [jpeg(640, 480, seed=seed * 10 + i) for i in range(n)]


def acknowledge(api: Api, count: int) -> dict[str, list[bytes]]:
    """Store ``count`` inspections; their ids and views, as the client was told."""
    out = {}
    for seed in range(count):
        r = api.inspect(views(seed))
        assert r.status_code == 201, r.text
        out[r.json()["id"]] = views(seed)
    return out


def assert_kept(api: Api, acknowledged: dict[str, list[bytes]]) -> None:
    for iid, originals in acknowledged.items():
        assert api.client.get(f"/v1/inspections/{iid}", headers=api.h("wms")).status_code == 200
        for n, data in enumerate(originals):
            r = api.client.get(f"/v1/inspections/{iid}/images/{n}", headers=api.h("wms"))
            assert r.status_code == 200 and r.content == data, (iid, n)


def stored_files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


def truncate_wal(db_file: Path) -> None:
    """Checkpoint the WAL to zero bytes, so the next commit must take new space on the full disk."""
    with sqlite3.connect(db_file) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0


def assert_storage_full(r: object, which: Path) -> dict[str, object]:
    from httpx import Response

    assert isinstance(r, Response)
    assert r.status_code == 507, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(r.headers["retry-after"]) > 0
    body: dict[str, object] = r.json()
    assert body["code"] == "storage_full" and body["status"] == 507
    assert str(body["detail"]).startswith("Disk full") and str(which) in str(body["detail"]), body
    return body


@pytest.mark.parametrize(
    ("full", "key"),
    [
        pytest.param("images", None, id="images"),
        pytest.param("images", "rma-7-attempt-1", id="images-idempotent"),
        pytest.param("database", None, id="database"),  # the views are written, then the commit fails
        pytest.param("database", "rma-7-attempt-1", id="database-idempotent"),  # the key's claim fails
    ],
)
def test_a_full_disk_refuses_with_507_keeps_nothing_half_done_and_recovers(
    bench: Bench, full: str, key: str | None
) -> None:
    api = bench.api
    acknowledged = acknowledge(api, 3)
    shared = views(0)[0]  # a view an acknowledged inspection names: it must survive the cleanup
    request = [shared, *views(7, 1)]
    new = sha256_hex(request[1])
    headers = {"Idempotency-Key": key} if key else {}
    before = api.sql("SELECT count(*) FROM inspections")[0][0]
    events = api.sql("SELECT count(*) FROM outbox")[0][0]
    files = stored_files(bench.image_root)

    if full == "database":
        truncate_wal(bench.db_disk / "data" / "inspector.db")
    filler = fill(bench.disk(full))
    refused = api.inspect(request, **headers)
    assert_storage_full(refused, bench.disk(full))

    assert api.sql("SELECT count(*) FROM inspections")[0][0] == before
    assert api.sql("SELECT count(*) FROM outbox")[0][0] == events
    assert not [p for p in bench.image_root.rglob("*") if p.name.startswith(".")], "a temporary file was left"
    assert stored_files(bench.image_root) == files, "a view of the refused inspection was left"
    assert new not in stored_files(bench.image_root)
    # what the operator sees: the readiness check and the status the page polls for its banner
    ready = api.client.get("/v1/ready", headers=api.h("wms"))
    assert ready.status_code == 503 and ready.json()["checks"]["disk"]["ok"] is False
    assert ready.json()["checks"]["disk"]["detail"].startswith("Disk full")
    status = api.client.get("/station/status", headers=api.h("operator")).json()
    assert status["storage"]["ok"] is False and status["storage"]["detail"].startswith("Disk full")
    assert_kept(api, acknowledged)  # reads still work on a full disk

    filler.unlink()
    again = api.inspect(request, **headers)
    assert again.status_code == 201, again.text
    assert api.client.get("/v1/ready", headers=api.h("wms")).status_code == 200
    assert api.client.get("/station/status", headers=api.h("operator")).json()["storage"]["ok"] is True
    assert api.sql("SELECT count(*) FROM inspections")[0][0] == before + 1
    assert_kept(api, {**acknowledged, again.json()["id"]: request})


def test_below_min_free_mb_is_refused_before_the_model_runs(bench: Bench) -> None:
    api = bench.api
    acknowledged = acknowledge(api, 1)
    api.settings.storage.min_free_mb = 8
    filler = fill(bench.image_disk, leave_mb=4)  # not full: below the threshold
    runs = bench.pipeline.runs

    body = assert_storage_full(api.inspect(views(5)), bench.image_disk / "images")
    assert body["min_free_mb"] == 8 and 3 <= float(str(body["free_mb"])) < 8
    assert bench.pipeline.runs == runs, "the model ran for a request refused up front"
    ready = api.client.get("/v1/ready", headers=api.h("wms")).json()["checks"]["disk"]
    assert ready["ok"] is False and ready["min_free_mb"] == 8 and ready["free_mb"] < 8
    assert "storage.min_free_mb" in ready["detail"]

    filler.unlink()
    assert api.inspect(views(5)).status_code == 201
    assert_kept(api, acknowledged)


_FSIZE_PROBE = """
import errno, json, resource, signal, sys
from pathlib import Path
from inspector.store.faults import storage_fault
from inspector.store.images import FolderImageStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG rather than death
store = FolderImageStore(Path(sys.argv[1]))
store.open()
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
small = store.put(b"s" * 1000)
try:
    store.put(b"b" * 200_000)
    print(json.dumps({"error": None}))
except OSError as exc:
    fault = storage_fault(exc)
    print(json.dumps({"errno": exc.errno, "code": fault.code if fault else None, "small": small}))
"""


def test_a_file_size_limit_leaves_no_partial_image(tmp_path: Path) -> None:
    """Without a mount: RLIMIT_FSIZE makes the image write fail half way (EFBIG), in a child process."""
    root = tmp_path / "images"
    out = subprocess.run(
        [sys.executable, "-c", _FSIZE_PROBE, str(root)], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == "storage_full", result
    files = [p for p in root.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [result["small"]], "a partial or temporary file was left"
