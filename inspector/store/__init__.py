"""Durable storage: the database (SQLAlchemy + alembic), the image files, keys and the webhook outbox.

The names below load on first use, so that the command line importing the store stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.store.core import BOOTSTRAP_FILE, Store, bootstrap_keys

__all__ = ["BOOTSTRAP_FILE", "Store", "bootstrap_keys"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from inspector.store import core

        return getattr(core, name)
    raise AttributeError(f"module 'inspector.store' has no attribute {name!r}")
