"""Retention: old views are pruned, records stay, shared images survive, the API answers 410 for what went.

Inspections are written straight through the store (backdated, their files
aged to match) on SQLite and on PostgreSQL; the 410 and the schedule go
through the real app.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from inspector.api.media import annotated_path
from inspector.config import RetentionConfig, StorageConfig
from inspector.pipeline import InspectionPipeline
from inspector.store import Store
from inspector.store import retention as retention_module
from inspector.store.images import sha256_hex
from inspector.store.inspections import StoredImage, add_decision, new_id, save_inspection
from inspector.store.models import InspectionRow
from inspector.store.retention import PruneReport, RetentionPolicy, prune, pruned_at
from inspector.types import utcnow
from tests.api.conftest import Api, add_keys, jpeg, make_settings, served_app

RTV, RESTOCK, RECYCLE, LIQUIDATE = "RETURN_TO_VENDOR", "RESTOCK", "RECYCLE", "LIQUIDATE"
NOW = utcnow()


@pytest.fixture
def store(tmp_path: Path, db_url: str | None) -> Iterator[Store]:
    s = Store(StorageConfig(data_dir=tmp_path / "data", db_url=db_url)).open()
    try:
        yield s
    finally:
        s.close()


def blob(seed: int) -> bytes:
    return f"view {seed}".encode() * 50


def age_file(store: Store, digest: str, when: datetime) -> None:
    os.utime(store.images.path_for(digest), (when.timestamp(), when.timestamp()))


def stored(
    store: Store, age_days: float, disposition: str, *, views: tuple[bytes, ...] = (), decided: str | None = None
) -> str:
    """An inspection made ``age_days`` ago with ``views`` (files aged to match), maybe decided since."""
    iid, created = new_id(), NOW - timedelta(days=age_days)
    body = {
        "id": iid,
        "created_at": created.isoformat(),
        "station_id": "bench-1",
        "item": {},
        "grade": {"level": "B"},
        "disposition": {"path": disposition},
        "versions": {"model": "m", "policy": "p", "rubric": "r"},
    }
    images = []
    for n, data in enumerate(views or (blob(hash(iid) % 10**6),)):
        digest = store.images.put(data)
        age_file(store, digest, created)
        images.append(StoredImage(n, digest, "image/jpeg", len(data), 8, 8, "cam0"))
    with store.db.write() as s:
        save_inspection(s, body, images=images, source="test", request_hash="h", created_by=None, idempotency_key=None)
        if decided is not None:
            add_decision(
                s,
                iid,
                action="override",
                grade="B",
                disposition=decided,
                reason_code="claim",
                note=None,
                actor="t",
                key_id=None,
                source="test",
            )
    return iid


def pruned(store: Store, iid: str) -> bool:
    with store.db.read() as s:
        return pruned_at(s, iid) is not None


def files_of(store: Store, *views: bytes) -> list[bool]:
    return [store.images.exists(sha256_hex(v)) for v in views]


@dataclass(frozen=True)
class Case:
    age_days: float
    recommended: str
    decided: str | None
    image_days: int | None
    overrides: dict[str, int | None]
    pruned: bool


POLICY_CASES = {
    "younger than image_days": Case(5, RESTOCK, None, 30, {}, False),
    "older than image_days": Case(40, RESTOCK, None, 30, {}, True),
    "no image_days keeps forever": Case(4000, RESTOCK, None, None, {}, False),
    "null override keeps a vendor claim": Case(400, RTV, None, 30, {RTV: None}, False),
    "the decision counts: decided RTV keeps": Case(400, RESTOCK, RTV, 30, {RTV: None}, False),
    "the decision counts: RTV overridden goes": Case(400, RTV, RECYCLE, 30, {RTV: None}, True),
    "longer override, not yet": Case(100, RTV, None, 30, {RTV: 365}, False),
    "longer override, past": Case(400, RTV, None, 30, {RTV: 365}, True),
    "shorter override": Case(10, LIQUIDATE, None, 30, {LIQUIDATE: 7}, True),
    "override alone, no image_days": Case(10, LIQUIDATE, None, None, {LIQUIDATE: 7}, True),
    "override alone leaves the rest": Case(400, RESTOCK, None, None, {LIQUIDATE: 7}, False),
}


@pytest.mark.parametrize("case", list(POLICY_CASES.values()), ids=list(POLICY_CASES))
def test_policy_by_age_disposition_and_override(store: Store, case: Case) -> None:
    view = blob(1)
    iid = stored(store, case.age_days, case.recommended, views=(view,), decided=case.decided)
    cfg = RetentionConfig(image_days=case.image_days, keep_days_by_disposition=case.overrides)

    report = prune(store.db, store.images, cfg, now=NOW)

    assert (report.inspections, report.files, pruned(store, iid)) == (case.pruned, case.pruned, case.pruned)
    assert files_of(store, view) == [not case.pruned]
    assert report.bytes == (len(view) if case.pruned else 0)
    with store.db.read() as s:  # the record stays, whatever happened to its views
        assert s.scalar(select(InspectionRow.grade).where(InspectionRow.id == iid)) == "B"


# (age of the inspection sharing the view, its disposition) -> is the shared file kept?
SHARED_CASES = {
    "shared with a young inspection: kept": ((5, RESTOCK), True),
    "shared with a kept vendor claim: kept": ((400, RTV), True),
    "shared with another old one: goes": ((400, RESTOCK), False),
}


@pytest.mark.parametrize("batch", [1, 200], ids=["batch1", "batch200"])
@pytest.mark.parametrize(("other", "kept"), list(SHARED_CASES.values()), ids=list(SHARED_CASES))
def test_a_shared_image_goes_only_with_its_last_keeper(
    store: Store, monkeypatch: pytest.MonkeyPatch, batch: int, other: tuple[float, str], kept: bool
) -> None:
    monkeypatch.setattr(retention_module, "BATCH", batch)
    monkeypatch.setattr(retention_module, "FILES_PER_TRANSACTION", batch)
    shared, own = blob(10), blob(11)
    old = stored(store, 400, RESTOCK, views=(own, shared))
    sibling = stored(store, other[0], other[1], views=(shared,))
    cfg = RetentionConfig(image_days=30, keep_days_by_disposition={RTV: None})

    dry = prune(store.db, store.images, cfg, dry_run=True, now=NOW)
    assert files_of(store, own, shared) == [True, True], "a dry run deletes nothing"
    assert not pruned(store, old)
    report = prune(store.db, store.images, cfg, now=NOW)

    assert files_of(store, own, shared) == [False, kept]
    assert pruned(store, old) and pruned(store, sibling) == (not kept)
    assert dry.as_dict() | {"dry_run": False} == report.as_dict(), "the dry run predicts the real one"
    assert (report.files, report.shared_kept) == ((1, 1) if kept else (2, 0))
    assert report.oldest == datetime.fromisoformat((NOW - timedelta(days=400)).isoformat())


def test_derived_copies_go_with_the_view_and_writes_in_progress_stay(store: Store) -> None:
    view = blob(20)
    stored(store, 400, RESTOCK, views=(view,))
    original = store.images.path_for(sha256_hex(view))
    derived = annotated_path(original, [])  # where the API keeps an annotated copy
    derived.write_bytes(b"x" * 7)
    in_progress = original.with_name(f".{original.name}.123.abc.tmp")
    in_progress.write_bytes(b"y")

    report = prune(store.db, store.images, RetentionConfig(image_days=30), now=NOW)

    assert not original.exists() and not derived.exists() and in_progress.exists()
    assert report.bytes == len(view) + 7


@pytest.mark.parametrize("committed", [True, False], ids=["its row commits", "its request fails"])
def test_a_view_stored_again_meanwhile_waits_for_a_later_run(store: Store, committed: bool) -> None:
    """A request storing the same bytes names the file before its row commits: the file stays for now.

    A later run deletes it if that request never stored its inspection, and keeps it if it did.
    """
    view = blob(30)
    iid = stored(store, 400, RESTOCK, views=(view,))
    store.images.put(view)  # a new inspection on its way, its row not committed yet
    cfg = RetentionConfig(image_days=30)

    first = prune(store.db, store.images, cfg, now=NOW)
    assert pruned(store, iid) and files_of(store, view) == [True]
    assert (first.files, first.in_use_kept) == (0, 1)
    if committed:
        stored(store, 0.01, RESTOCK, views=(view,))
    later = prune(store.db, store.images, cfg, now=NOW + timedelta(hours=2))

    assert files_of(store, view) == [committed]
    assert (later.inspections, later.files) == (0, 0 if committed else 1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"RETURN_TO_VENDR": None}, "unknown dispositions RETURN_TO_VENDR"), ({LIQUIDATE: -1}, "0 or more")],
    ids=["a misspelt disposition", "negative days"],
)
def test_a_wrong_override_is_refused(overrides: dict[str, int | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetentionPolicy(RetentionConfig(image_days=3, keep_days_by_disposition=overrides))


def test_prune_command_dry_run_then_prune(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from inspector.cli import app

    if store.db.dialect != "sqlite":
        pytest.skip("the command is shown on the default SQLite data folder")
    view = blob(40)
    stored(store, 400, RESTOCK, views=(view,))
    monkeypatch.setenv("INSPECTOR_RETENTION__IMAGE_DAYS", "30")
    args = ["prune", "--data-dir", str(store.data_dir)]

    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would prune the views of 1 inspections" in dry.stdout and "1 files" in dry.stdout
    assert files_of(store, view) == [True]
    real = CliRunner().invoke(app, args)
    assert real.exit_code == 0 and "pruned the views of 1 inspections" in real.stdout
    assert files_of(store, view) == [False]
    again = CliRunner().invoke(app, args)
    assert "pruned nothing" in again.stdout


# ------------------------------------------------------------------ the API


def backdate(api: Api, iid: str, days: float) -> None:
    when = NOW - timedelta(days=days)
    store: Store = api.app.state.store
    with store.db.write() as s:
        s.execute(update(InspectionRow).where(InspectionRow.id == iid).values(created_at=when))
    for view in api.client.get(f"/v1/inspections/{iid}", headers=api.h()).json()["views"]:
        age_file(store, view["image"]["sha256"], when)


def test_a_pruned_view_answers_410_and_the_inspection_says_so(api: Api) -> None:
    shared, own = jpeg(seed=1), jpeg(seed=2)
    old = api.inspect([own, shared]).json()["id"]
    young = api.inspect([shared]).json()["id"]
    backdate(api, old, 60)
    store: Store = api.app.state.store

    report = prune(store.db, store.images, RetentionConfig(image_days=30))

    assert (report.inspections, report.files, report.shared_kept) == (1, 1, 1)
    for n in (0, 1):
        for query in ("", "?annotated=1"):
            r = api.client.get(f"/v1/inspections/{old}/images/{n}{query}", headers=api.h())
            assert r.status_code == 410, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "image_pruned"
    body = api.client.get(f"/v1/inspections/{old}", headers=api.h()).json()
    assert body["images_pruned_at"] is not None and body["grade"] and body["final"]
    listed = {i["id"]: i for i in api.client.get("/v1/inspections", headers=api.h()).json()["items"]}
    assert listed[old]["images_pruned_at"] == body["images_pruned_at"]
    assert listed[young]["images_pruned_at"] is None
    r = api.client.get(f"/v1/inspections/{young}/images/0", headers=api.h())
    assert r.status_code == 200 and r.content == shared


def test_serve_prunes_on_its_schedule(tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None) -> None:
    settings = make_settings(tmp_path, db_url=db_url)
    settings.retention = RetentionConfig(image_days=30, schedule_hours=1)
    seed = Store(settings.storage).open()
    try:
        iid = stored(seed, 90, RESTOCK, views=(blob(50),))
    finally:
        seed.close()
    app = served_app(settings, pipeline)
    with TestClient(app) as client:
        add_keys(app)
        deadline = time.monotonic() + 10
        while app.state.last_prune is None and time.monotonic() < deadline:
            time.sleep(0.05)
        report: PruneReport | None = app.state.last_prune
        assert report is not None and (report.inspections, report.files) == (1, 1)
        assert client.get("/v1/health").status_code == 200
        assert pruned(app.state.store, iid)
