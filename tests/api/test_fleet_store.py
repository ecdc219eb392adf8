"""The store shared by many benches: URLs, migrations, idempotency, outbox leases, paging, images.

Tests that take ``backend`` run on SQLite and on the real PostgreSQL server the
session starts. "Another process" is another engine (its own connection pool)
on the same database: the database alone must keep them apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from inspector.api.app import create_app
from inspector.pipeline import InspectionPipeline
from inspector.store import inspections as repo
from inspector.store.db import Database, normalize_url
from inspector.store.images import FolderImageStore, ImageStore
from inspector.store.webhooks import add_endpoint, add_event, lease_due, record_attempt
from tests.api.conftest import Api, add_keys, jpeg, make_settings

pytestmark = pytest.mark.api


@pytest.fixture
def database(tmp_path: Path, db_url: str | None) -> Iterator[Database]:
    """A migrated, empty database on the module's backend."""
    db = Database(db_url or f"sqlite:///{tmp_path / 'fleet.db'}")
    db.migrate()
    yield db
    db.dispose()


def other_process(db: Database) -> Database:
    """Another engine on the same database, as a second station would have."""
    return Database(db.url)


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db.example:5432/inspector", "postgresql+psycopg://u:p@db.example:5432/inspector"),
        ("postgres://u@db/inspector", "postgresql+psycopg://u@db/inspector"),
        ("postgresql+psycopg://u@db/inspector", "postgresql+psycopg://u@db/inspector"),
        ("sqlite:////var/lib/inspector/inspector.db", "sqlite:////var/lib/inspector/inspector.db"),
    ],
)
def test_postgresql_urls_mean_psycopg_3(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_a_fleet_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from inspector.config import Settings
    from inspector.store import Store

    monkeypatch.setenv("INSPECTOR_STATION_ID", "bench-07")
    monkeypatch.setenv("INSPECTOR_STORAGE__DB_URL", "postgresql://inspector@db.example/inspector")
    monkeypatch.setenv("INSPECTOR_STORAGE__IMAGE_DIR", str(tmp_path / "shared"))
    settings = Settings()
    store = Store(settings.storage)  # builds the engine; connects only when used
    try:
        assert settings.station_id == "bench-07"
        assert store.db.dialect == "postgresql" and store.db.url.startswith("postgresql+psycopg://")
        assert store.images.location == str(tmp_path / "shared")
    finally:
        store.close()


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "inspector.db", "postgresql+psycopg2://u@h/db", ""])
def test_other_databases_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="database"):
        normalize_url(bad)


# ------------------------------------------------------------ migrations


def test_a_0001_sqlite_database_with_rows_migrates_to_head(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from inspector.store.models import Base

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate("0001")
    now = "2026-11-30 10:00:00.000000"
    with db.engine.begin() as c:
        for seq in (1, 2):
            c.execute(
                text(
                    "INSERT INTO inspections (seq, id, created_at, station_id, source, grade, disposition,"
                    " model_version, policy_version, rubric_version, request_hash, body)"
                    " VALUES (:seq, :id, :now, 'bench-1', 'api', 'B', 'OPEN_BOX', 'm', 'p', 'r', 'h', '{}')"
                ),
                {"seq": seq, "id": f"00000000-0000-4000-8000-00000000000{seq}", "now": now},
            )
        c.execute(
            text(
                "INSERT INTO webhook_endpoints (id, url, secret, events, description, created_at)"
                " VALUES ('wh_1', 'http://127.0.0.1:9/h', 's', '[]', '', :now)"
            ),
            {"now": now},
        )
        c.execute(
            text("INSERT INTO outbox (seq, id, type, body, created_at) VALUES (1, 'msg_1', 't', '{}', :now)"),
            {"now": now},
        )
        c.execute(
            text(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at)"
                " VALUES ('msg_1', 'wh_1', 'pending', 2, :now)"
            ),
            {"now": now},
        )
    assert db.current_revision() == "0001"

    db.migrate()
    with db.engine.connect() as c:
        assert c.execute(text("SELECT seq, station_id, grade FROM inspections ORDER BY seq")).all() == [
            (1, "bench-1", "B"),
            (2, "bench-1", "B"),
        ]
        assert c.execute(text("SELECT status, attempts, leased_by FROM webhook_deliveries")).all() == [
            ("pending", 2, None)
        ]
        indexes = {r[1] for r in c.execute(text("PRAGMA index_list('inspections')"))}
        assert "ix_inspections_station_id" in indexes
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    assert db.current_revision() != "0001"
    db.dispose()


@pytest.mark.postgres
def test_an_empty_postgresql_database_migrates_to_the_models(postgres: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from inspector.store.models import Base

    name = postgres.create_database()
    db = Database(postgres.url(name))
    try:
        # Three stations starting at once on an empty database: one migrates, the others wait and find it done.
        errors: list[BaseException] = []

        def start() -> None:
            d = Database(db.url)
            try:
                d.migrate()
            except BaseException as exc:
                errors.append(exc)
            finally:
                d.dispose()

        threads = [threading.Thread(target=start) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with db.engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
            assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        db.dispose()
        postgres.drop_database(name)


# ----------------------------------------------------------- idempotency


def test_a_lapsed_idempotency_lease_is_fenced(database: Database) -> None:
    """A request whose lease ran out and was taken over cannot complete nor free the key any more."""
    with database.write() as s:
        first = repo.claim_key(s, "k-1", "hash", lease=timedelta(milliseconds=1))
    assert first.kind == "new" and first.lease is not None
    time.sleep(0.01)
    with other_process(database).write() as s:
        second = repo.claim_key(s, "k-1", "hash", lease=timedelta(seconds=60))
    assert second.kind == "new" and second.lease is not None and second.lease > first.lease

    body = _body("00000000-0000-4000-8000-0000000000aa")
    with pytest.raises(repo.KeyLost), database.write() as s:
        repo.save_inspection(
            s,
            body,
            images=[],
            source="api",
            request_hash="hash",
            created_by=None,
            idempotency_key="k-1",
            idempotency_lease=first.lease,
        )
    with database.write() as s:
        repo.release_key(s, "k-1", "hash", first.lease)  # the old holder gives up: the new one keeps the key
    with database.write() as s:
        assert repo.claim_key(s, "k-1", "hash", lease=timedelta(seconds=60)).kind == "busy"
        repo.save_inspection(
            s,
            _body("00000000-0000-4000-8000-0000000000bb"),
            images=[],
            source="api",
            request_hash="hash",
            created_by=None,
            idempotency_key="k-1",
            idempotency_lease=second.lease,
        )
    with database.read() as s:
        claim = repo.claim_key(s, "k-1", "hash", lease=timedelta(seconds=60))
        assert claim.kind == "replay" and claim.inspection_id == "00000000-0000-4000-8000-0000000000bb"
        assert s.execute(text("SELECT count(*) FROM inspections")).scalar() == 1


def test_two_servers_on_one_database_answer_one_idempotency_key_once(
    tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None
) -> None:
    """Concurrent retries sent to two app instances (two engines) make one inspection."""
    a = create_app(make_settings(tmp_path, db_url=db_url, station_id="bench-a"), pipeline=pipeline)
    b = create_app(make_settings(tmp_path, db_url=db_url, station_id="bench-b"), pipeline=pipeline)
    image = jpeg(seed=61)
    with TestClient(a) as ca, TestClient(b) as cb:
        keys = add_keys(a)
        results: list[Any] = []
        barrier = threading.Barrier(8)

        def post(client: TestClient) -> None:
            barrier.wait()
            results.append(
                client.post(
                    "/v1/inspections",
                    headers={"X-API-Key": keys["wms"], "Idempotency-Key": "fleet-1"},
                    files=[("images", ("a.jpg", image, "image/jpeg"))],
                )
            )

        threads = [threading.Thread(target=post, args=(ca if i % 2 else cb,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [r.status_code for r in results] == [201] * 8, [r.text for r in results]
        assert len({r.json()["id"] for r in results}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 7
        with a.state.store.db.read() as s:
            assert s.execute(text("SELECT count(*) FROM inspections")).scalar() == 1


# ---------------------------------------------------------------- outbox


def _pending_deliveries(db: Database, n: int) -> None:
    with db.write() as s:
        add_endpoint(s, "http://127.0.0.1:9/hook", ["inspection.completed"])
        for i in range(n):
            add_event(s, "inspection.completed", {"i": i})


def test_many_workers_lease_each_delivery_once(database: Database) -> None:
    """Four workers, each with its own engine, drain 120 deliveries: none is leased twice."""
    _pending_deliveries(database, 120)
    taken: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(name: str) -> None:
        db = other_process(database)
        mine: list[int] = []
        try:
            start.wait()
            while True:
                with db.write() as s:
                    jobs = lease_due(s, limit=7, lease=timedelta(seconds=60), worker=name)
                if not jobs:
                    break
                for j in jobs:
                    with db.write() as s:
                        assert (
                            record_attempt(
                                s,
                                j.delivery_id,
                                ok=True,
                                status=200,
                                error=None,
                                next_delay=None,
                                max_attempts=3,
                                worker=name,
                            )
                            == "delivered"
                        )
                mine += [j.delivery_id for j in jobs]
        except BaseException as exc:
            errors.append(exc)
        finally:
            taken[name] = mine
            db.dispose()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    every = [d for ids in taken.values() for d in ids]
    assert len(every) == len(set(every)) == 120
    with database.read() as s:
        assert s.execute(text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")).all() == [
            ("delivered", 120)
        ]


@pytest.mark.postgres
def test_postgresql_workers_skip_rows_another_worker_has_locked(postgres: Any, pg_template: str) -> None:
    """With one row locked by a worker mid-lease, another worker takes the rest at once instead of waiting."""
    name = postgres.create_database(template=pg_template)
    db = Database(postgres.url(name))
    _pending_deliveries(db, 3)
    blocker = db.engine.connect()
    tx = blocker.begin()
    other = other_process(db)
    try:
        every = set(blocker.execute(text("SELECT id FROM webhook_deliveries")).scalars())
        locked = blocker.execute(text("SELECT id FROM webhook_deliveries ORDER BY id LIMIT 1 FOR UPDATE")).scalar_one()
        with other.write() as s:
            # Without SKIP LOCKED the lease would wait on the locked row and fail with LockNotAvailable.
            s.execute(text("SET LOCAL lock_timeout = '200ms'"))
            jobs = lease_due(s, limit=10, lease=timedelta(seconds=60), worker="w2")
        assert {j.delivery_id for j in jobs} == every - {locked}
    finally:
        tx.rollback()
        blocker.close()
        other.dispose()
        db.dispose()
        postgres.drop_database(name)


def test_a_worker_whose_lease_was_taken_over_leaves_the_schedule_to_the_holder(database: Database) -> None:
    _pending_deliveries(database, 1)
    with database.write() as s:
        (job,) = lease_due(s, limit=1, lease=timedelta(milliseconds=1), worker="slow")
    time.sleep(0.01)
    with database.write() as s:
        (again,) = lease_due(s, limit=1, lease=timedelta(seconds=60), worker="fast")
    assert again.delivery_id == job.delivery_id
    with database.write() as s:  # the slow worker's failure does not reschedule nor free the fast one's lease
        status = record_attempt(
            s,
            job.delivery_id,
            ok=False,
            status=500,
            error="HTTP 500",
            next_delay=timedelta(hours=1),
            max_attempts=1,
            worker="slow",
        )
    assert status == "pending"
    with database.read() as s:
        assert s.execute(text("SELECT leased_by, status FROM webhook_deliveries")).all() == [("fast", "pending")]


# ------------------------------------------------------------- paging


def _body(inspection_id: str, station: str = "bench-1", rma: str | None = None) -> dict[str, Any]:
    from inspector.types import utcnow

    return {
        "id": inspection_id,
        "created_at": utcnow().isoformat(),
        "station_id": station,
        "item": {"rma": rma},
        "grade": {"level": "B"},
        "disposition": {"path": "OPEN_BOX"},
        "versions": {"model": "m", "policy": "p", "rubric": "r"},
    }


def test_cursor_pages_stay_stable_while_other_stations_insert(database: Database) -> None:
    """Paging newest first while two other engines insert: no item twice, every item stored before is seen."""
    import uuid

    def insert(db: Database, n: int, station: str) -> list[str]:
        ids = []
        for _ in range(n):
            iid = str(uuid.uuid4())
            with db.write() as s:
                repo.save_inspection(
                    s,
                    _body(iid, station, rma="RMA-P"),
                    images=[],
                    source="api",
                    request_hash="h",
                    created_by=None,
                    idempotency_key=None,
                )
            ids.append(iid)
        return ids

    before = insert(database, 30, "bench-1")
    stop = threading.Event()
    during: list[str] = []

    def writer(station: str) -> None:
        db = other_process(database)
        try:
            while not stop.is_set():
                during.extend(insert(db, 1, station))
        finally:
            db.dispose()

    writers = [threading.Thread(target=writer, args=(f"bench-{i}",)) for i in (2, 3)]
    for w in writers:
        w.start()
    seen: list[str] = []
    cursor = None
    try:
        while True:
            with database.read() as s:
                items, cursor = repo.list_inspections(s, rma="RMA-P", cursor=cursor, limit=4)
            seen += [b["id"] for b in items]
            if cursor is None:
                break
            grown = len(during) + 2
            deadline = time.monotonic() + 30
            while len(during) < grown and time.monotonic() < deadline:  # rows arrive between every two pages
                time.sleep(0.005)
    finally:
        stop.set()
        for w in writers:
            w.join(30)
    assert len(during) >= 2 * 7, "rows were inserted between the pages"
    assert len(seen) == len(set(seen)), "no item on two pages"
    assert set(before) <= set(seen), "nothing stored before the first page is skipped"
    assert [i for i in seen if i in set(before)] == list(reversed(before)), "newest first"
    with database.read() as s:
        only = repo.list_inspections(s, station="bench-1", limit=200)[0]
    assert {b["id"] for b in only} == set(before)


# -------------------------------------------------------------- images


def test_two_stations_storing_one_image_keep_one_whole_copy(tmp_path: Path) -> None:
    """Eight writers (two stores on one folder) put the same bytes while readers poll: one file, never partial."""
    shared = tmp_path / "shared-images"
    stores: list[ImageStore] = [FolderImageStore(shared), FolderImageStore(shared)]
    for st in stores:
        st.open()
        assert isinstance(st, ImageStore)
    data = os.urandom(3_000_000)
    digest = hashlib.sha256(data).hexdigest()
    torn: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                got = stores[1].get(digest)
            except FileNotFoundError:
                continue
            if got != data:
                torn.append(len(got))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    barrier = threading.Barrier(8)
    digests: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        digests.append(stores[i % 2].put(data))

    writers = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    done.set()
    for r in readers:
        r.join(10)
    assert digests == [digest] * 8
    assert torn == []
    files = [p for p in shared.rglob("*") if p.is_file()]
    assert files == [shared / digest[:2] / digest[2:4] / digest], "one copy, no temporary file left"
    assert files[0].read_bytes() == data


def test_stations_on_one_store_are_listed_and_counted_by_station(
    tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None
) -> None:
    image_dir = tmp_path / "shared-images"
    apps = []
    for name in ("bench-a", "bench-b"):
        settings = make_settings(tmp_path / name, db_url=db_url, station_id=name)
        if db_url is None:  # SQLite: both stations on one file
            settings.storage.db_url = f"sqlite:///{tmp_path / 'fleet.db'}"
        settings.storage.image_dir = image_dir
        apps.append(create_app(settings, pipeline=pipeline))
    image = jpeg(seed=71)
    with TestClient(apps[0]) as ca, TestClient(apps[1]) as cb:
        keys = add_keys(apps[0])
        clients = {
            "bench-a": Api(apps[0], ca, apps[0].state.settings, keys),
            "bench-b": Api(apps[1], cb, apps[1].state.settings, keys),
        }
        made = {
            name: [api.inspect([image], {"rma": f"RMA-{name}-{i}"}).json() for i in range(2)]
            for name, api in clients.items()
        }
        for name, bodies in made.items():
            assert {b["station_id"] for b in bodies} == {name}
        a = clients["bench-a"]
        for name, bodies in made.items():
            page = a.client.get(f"/v1/inspections?station={name}", headers=a.h("wms")).json()
            assert [b["id"] for b in page["items"]] == [b["id"] for b in reversed(bodies)]
        assert a.client.get("/v1/inspections?station=bench-z", headers=a.h("wms")).json()["items"] == []
        everyone = a.client.get("/v1/inspections", headers=a.h("wms")).json()["items"]
        assert len(everyone) == 4
        digest = hashlib.sha256(image).hexdigest()
        assert [p for p in image_dir.rglob("*") if p.is_file()] == [image_dir / digest[:2] / digest[2:4] / digest]
        for name, api in clients.items():
            metrics = api.client.get("/metrics", headers=api.h("wms")).text
            counted = [ln for ln in metrics.splitlines() if ln.startswith("inspector_inspections_total{")]
            assert counted and all(f'station="{name}"' in ln for ln in counted)
            assert sum(float(ln.rsplit(" ", 1)[1]) for ln in counted) == 2.0
        got = json.loads(cb.get(f"/v1/inspections/{made['bench-a'][0]['id']}", headers=a.h("wms")).text)
        assert got["station_id"] == "bench-a", "a station reads what another stored"


# ------------------------------------------------------------------ CLI


def test_db_upgrade_and_current_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from inspector.cli import app

    runner = CliRunner()
    data = str(tmp_path / "d")
    first = runner.invoke(app, ["db", "current", "--data-dir", data])
    assert first.exit_code == 0 and first.stdout.strip() == "empty"
    up = runner.invoke(app, ["db", "upgrade", "--data-dir", data])
    assert up.exit_code == 0 and up.stdout.startswith("empty -> "), up.output
    head = up.stdout.strip().split(" -> ")[1]
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", data]).stdout.strip() == f"already at {head}"
    assert runner.invoke(app, ["db", "current", "--data-dir", data]).stdout.strip() == head
    gone = runner.invoke(app, ["db", "upgrade", "--db", "postgresql://bench:hunter2@127.0.0.1:9/inspector"])
    assert isinstance(gone.exception, ValueError)
    assert "cannot be used" in str(gone.exception) and "hunter2" not in str(gone.exception)
