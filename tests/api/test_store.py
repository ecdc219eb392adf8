"""The store on its own: migrations, SQLite settings, image files, keys, the keys command."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.config import StorageConfig, WebhookConfig
from inspector.store import BOOTSTRAP_FILE, Store, bootstrap_keys
from inspector.store.delivery import backoff
from inspector.store.images import FolderImageStore
from inspector.store.inspections import decode_cursor, encode_cursor
from inspector.store.keys import list_keys, lookup

pytestmark = pytest.mark.api


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(StorageConfig(data_dir=tmp_path / "data")).open()
    yield s
    s.close()


def test_migrations_match_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from inspector.store.models import Base

    with store.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    head = _head_revision()
    assert store.db.current_revision() == head
    store.db.migrate()  # running again at the next start is a no-op
    assert store.db.current_revision() == head


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from inspector.store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_sqlite_runs_in_wal_with_full_sync(store: Store) -> None:
    with store.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_images_are_stored_once_under_their_digest(tmp_path: Path) -> None:
    images = FolderImageStore(tmp_path / "img")
    data = b"\xff\xd8\xff" + os.urandom(100)
    digest = images.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    path = tmp_path / "img" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data and images.get(digest) == data
    assert images.put(data) == digest
    assert [p for p in (tmp_path / "img").rglob("*") if p.is_file()] == [path], "no temporary files left"
    for bad in ("../../etc/passwd", digest.upper(), digest[:-1], digest + "0", ""):
        with pytest.raises(ValueError):
            images.path_for(bad)


def test_bootstrap_writes_two_keys_once_to_a_private_file(store: Store) -> None:
    path = bootstrap_keys(store)
    assert path == store.data_dir / BOOTSTRAP_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [ln.split() for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert [ln[0] for ln in lines] == ["admin", "operator"]
    with store.db.read() as s:
        for role, key_id, key in lines:
            info = lookup(s, key)
            assert info is not None and info.role.value == role and info.id == key_id
    assert bootstrap_keys(store) is None, "never again once keys exist"


def test_keys_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    from inspector.cli import app

    runner = CliRunner()
    data = str(tmp_path / "d")
    made = runner.invoke(app, ["keys", "create", "--role", "wms", "--name", "main wms", "--data-dir", data])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("insp_") and len(key) > 40
    listed = runner.invoke(app, ["keys", "list", "--data-dir", data])
    assert listed.exit_code == 0 and "main wms" in listed.stdout and key not in listed.stdout
    key_id = next(ln.split()[0] for ln in listed.stdout.splitlines() if "main wms" in ln)
    as_json = runner.invoke(app, ["keys", "list", "--json", "--data-dir", data])
    assert as_json.exit_code == 0 and key not in as_json.stdout
    assert [(k["id"], k["role"], k["name"], k["revoked_at"]) for k in json.loads(as_json.stdout)] == [
        (key_id, "wms", "main wms", None)
    ]
    assert runner.invoke(app, ["keys", "revoke", key_id, "--data-dir", data]).exit_code == 0
    s = Store(StorageConfig(data_dir=Path(data))).open()
    try:
        with s.db.read() as session:
            assert lookup(session, key) is None
            assert [k.revoked_at is not None for k in list_keys(session)] == [True]
    finally:
        s.close()
    bad = runner.invoke(app, ["keys", "create", "--role", "root", "--data-dir", data])
    assert bad.exit_code != 0


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    """Full jitter: retries that failed together spread over the whole window, never past the cap."""
    cfg = WebhookConfig(base_delay_s=2.0, max_delay_s=60.0)
    rng = random.Random(0)
    for attempt, full in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (20, 60.0)]:
        delays = [backoff(attempt, cfg, rng).total_seconds() for _ in range(200)]
        assert all(cfg.base_delay_s <= d <= full for d in delays), "bounded: from the base delay to the capped ceiling"
        if full > cfg.base_delay_s:
            assert len(set(delays)) == len(delays), "jittered: no two retries at the same moment"
            quarter = (full - cfg.base_delay_s) / 4
            assert min(delays) < cfg.base_delay_s + quarter, "spread over the whole window, not its top half"
            assert max(delays) > full - quarter


@pytest.mark.parametrize("cursor", ["", "abc", encode_cursor(5)[:-2] + "!!", "eyJzIjogLTF9", "eyJ4IjogMX0"])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(cursor)
    assert decode_cursor(encode_cursor(42)) == 42
