"""The Store: the database and the image files of a station, and first-start keys.

Both may be shared: a fleet of benches points every station at one PostgreSQL
URL and one image folder (``storage.db_url``, ``storage.image_dir``).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select

from inspector.config import StorageConfig
from inspector.store.db import Database
from inspector.store.images import FolderImageStore, ImageStore
from inspector.store.keys import Role, create_key
from inspector.store.models import ApiKey

BOOTSTRAP_FILE = "bootstrap-keys.txt"


class Store:
    """The database and the image store of a station (its own, or shared with a fleet)."""

    def __init__(self, cfg: StorageConfig) -> None:
        self.data_dir = cfg.data_dir
        self.db = Database(cfg.resolved_db_url(), busy_timeout_ms=cfg.busy_timeout_ms)
        self.images: ImageStore = FolderImageStore(cfg.resolved_image_dir())

    def open(self) -> Store:
        """Create the folders and bring the schema up to date."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.images.open()
        self.db.migrate()
        return self

    def close(self) -> None:
        self.db.dispose()


def bootstrap_keys(store: Store) -> Path | None:
    """First start: with no key at all, create an admin and an operator key.

    They are written once to ``<data_dir>/bootstrap-keys.txt`` (mode 0600) and
    returned as that path; None when keys already exist.
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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        path.chmod(0o600)
    return path
