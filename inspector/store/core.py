"""The Store: the database and the image files of a station, and first-start keys.

Both may be shared: a fleet of benches points every station at one PostgreSQL
URL and one image folder (``storage.db_url``, ``storage.image_dir``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from sqlalchemy import func, select

from inspector.config import StorageConfig
from inspector.store.db import Database
from inspector.store.images import FolderImageStore, ImageStore
from inspector.store.keys import Role, create_key
from inspector.store.models import ApiKey

BOOTSTRAP_FILE = "bootstrap-keys.txt"
log = logging.getLogger(__name__)


class Store:
    """The database and the image store of a station (its own, or shared with a fleet)."""

    def __init__(self, cfg: StorageConfig) -> None:
        self.data_dir = cfg.data_dir
        self.db = Database(
            cfg.resolved_db_url(), busy_timeout_ms=cfg.busy_timeout_ms, connect_timeout_s=cfg.connect_timeout_s
        )
        self.images: ImageStore = FolderImageStore(cfg.resolved_image_dir())

    def open(self) -> Store:
        """Create the folders and bring the schema up to date.

        The data folder is made 0700 and a SQLite database (with its -wal and -shm) 0600: the
        database holds webhook secrets and key hashes. An image folder created here is 0700.
        """
        _private_dir(self.data_dir)
        root = getattr(self.images, "root", None)
        if isinstance(root, Path) and not root.exists():
            root.mkdir(parents=True, mode=0o700)
        self.images.open()
        db_file = self.db.file
        if db_file is not None:
            _private_file(db_file)  # before SQLite creates it: its -wal and -shm take the database's mode
        self.db.migrate()
        if db_file is not None:
            for side in (db_file.with_name(db_file.name + "-wal"), db_file.with_name(db_file.name + "-shm")):
                _private_file(side, create=False)
        return self

    def close(self) -> None:
        self.db.dispose()

    def disk_paths(self) -> list[Path]:
        """Where this station's data sits on local disks (the image folder, a SQLite file): what can fill up."""
        root = getattr(self.images, "root", None)
        return [p for p in (root, self.db.file) if isinstance(p, Path)]


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        path.chmod(0o700)
    except OSError as exc:  # not ours (a folder shared with another account): say so, keep going
        log.warning("could not make %s private (0700): %s", path, exc)


def _private_file(path: Path, *, create: bool = True) -> None:
    """Make ``path`` 0600, creating it empty when missing (an empty file is an empty SQLite database).

    An existing database is never opened here: closing a descriptor of a SQLite file drops every
    lock this process holds on it.
    """
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    try:
        path.chmod(0o600)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not make %s private (0600): %s", path, exc)


def bootstrap_keys(store: Store) -> Path | None:
    """First start: with no key at all, create an admin and an operator key.

    They are written once to ``<data_dir>/bootstrap-keys.txt`` (mode 0600) and
    returned as that path; None when keys already exist. The file must not exist:
    a file or a link planted there is refused (FileExistsError, no key is made),
    never written through.
    """
    with store.db.write() as s:
        store.db.lock(s, "bootstrap-keys")  # benches starting together on one database: only the first makes keys
        if int(s.scalar(select(func.count()).select_from(ApiKey)) or 0):
            return None
        admin, admin_key = create_key(s, Role.ADMIN, "bootstrap admin")
        operator, operator_key = create_key(s, Role.OPERATOR, "bootstrap operator")
        path = store.data_dir / BOOTSTRAP_FILE
        text = (
            "# API keys created on first start. They are shown nowhere else: keep them, then delete this file.\n"
            f"# Send one as the X-API-Key header. Manage keys with 'inspector keys'.\n"
            f"admin {admin.id} {admin_key}\n"
            f"operator {operator.id} {operator_key}\n"
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError as exc:
            raise FileExistsError(
                f"{path} already exists (a file or a link); the first-start keys are written only to a new file: "
                "remove it and start again"
            ) from exc
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path
