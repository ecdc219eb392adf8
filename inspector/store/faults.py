"""Storage faults in the station's own words: a full disk, a read-only disk, a database out of reach.

The store meets them as ``OSError`` (image files) or as a driver's error wrapped by
SQLAlchemy (SQLite, psycopg). :func:`storage_fault` names each one as an error of
:mod:`inspector.errors` with a stable code, so a client is told 507 or 503 with
``Retry-After`` rather than 500, and the operator is told what to do. Where the
driver's error is vague (SQLite's "disk I/O error", "unable to open database file")
the file system itself is asked: is it read-only, is it out of space?
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from inspector.errors import Busy, InspectorError, StorageFull, Unavailable

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_MB = 1024 * 1024
# Below this a file system counts as full when a driver only says "I/O error".
_NEARLY_FULL_MB = 1.0
# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_FULL = frozenset({"53100"})  # disk_full
_PG_READ_ONLY = frozenset({"25006"})  # read_only_sql_transaction (a standby, default_transaction_read_only)
# serialization failure, deadlock, lock not available, too many connections, query cancelled
_PG_BUSY = frozenset({"40001", "40P01", "55P03", "53300", "57014"})
_PG_GONE_PREFIXES = ("08", "57P")  # connection exceptions; admin shutdown, crash shutdown, cannot connect now


@dataclass(frozen=True, slots=True)
class Disk:
    """The file system under one storage path, as the operator needs to see it."""

    path: str
    free_mb: float
    read_only: bool


def disk(path: Path) -> Disk:
    """Free space and the read-only flag of the file system holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    return Disk(str(path), st.f_bavail * st.f_frsize / _MB, bool(st.f_flag & os.ST_RDONLY))


def disks(paths: Iterable[Path]) -> list[Disk]:
    """One :class:`Disk` per file system among ``paths`` (the images and a SQLite file often share one)."""
    seen: set[int] = set()
    out = []
    for path in paths:
        try:
            probe = path if path.exists() else path.parent
            dev = probe.stat().st_dev
            if dev in seen:
                continue
            seen.add(dev)
            out.append(disk(path))
        except OSError:
            continue  # an unreachable folder is reported by the checks that use it
    return out


def full(d: Disk, min_free_mb: float | None = None) -> StorageFull:
    """The error (507) for a disk that is full, or has less than ``min_free_mb`` free."""
    needs = f" (the station needs {min_free_mb:g} MB, storage.min_free_mb)" if min_free_mb else ""
    return StorageFull(
        f"Disk full: {d.free_mb:.1f} MB free on {d.path}{needs}; new inspections are refused until space is freed",
        retry_after=60,
        free_mb=round(d.free_mb, 1),
        min_free_mb=min_free_mb,
        path=d.path,
    )


def read_only(where: str) -> Unavailable:
    """503, not 507: nothing is short of space; the store needs the operator (a remount, a failing disk)."""
    return Unavailable(
        f"Storage is read-only ({where}): inspections can be read but not stored until it is writable again",
        code="storage_read_only",
        retry_after=30,
    )


def gone(reason: object) -> Unavailable:
    return Unavailable(f"the database cannot be reached ({reason}); retry", code="storage_unavailable", retry_after=2)


def busy(reason: object) -> Busy:
    return Busy(f"the database is busy ({reason}); retry", code="storage_busy", retry_after=1)


def check_space(paths: Iterable[Path], min_free_mb: float) -> None:
    """Raise :class:`StorageFull` when a disk under ``paths`` has less than ``min_free_mb`` free (0 = no check)."""
    if min_free_mb <= 0:
        return
    for d in disks(paths):
        if d.free_mb < min_free_mb:
            raise full(d, min_free_mb)


def _from_disks(paths: Iterable[Path]) -> InspectorError | None:
    """What the file systems themselves say is wrong, when a driver's error does not."""
    for d in disks(paths):
        if d.read_only:
            return read_only(f"{d.path} is mounted read-only")
        if d.free_mb < _NEARLY_FULL_MB:
            return full(d)
    return None


def _sqlite(orig: sqlite3.Error, paths: list[Path]) -> InspectorError:
    name = getattr(orig, "sqlite_errorname", "") or ""
    db_file = getattr(orig, "db_file", None)  # set by the engine (inspector.store.db)
    if isinstance(db_file, Path):
        paths = [db_file, *paths]
    if name == "SQLITE_FULL":
        return _from_disks(paths) or StorageFull(f"the database disk is full ({orig})", retry_after=60)
    if name.startswith("SQLITE_READONLY"):
        return _from_disks(paths) or read_only(str(orig))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return busy(orig)
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")):
        return _from_disks(paths) or gone(orig)
    return busy(orig)


def _postgres(orig: BaseException | None, invalidated: bool) -> InspectorError:
    state = str(getattr(orig, "sqlstate", "") or "")
    if state in _PG_FULL:
        return StorageFull(f"the database server's disk is full ({orig})", retry_after=60)
    if state in _PG_READ_ONLY:
        return read_only(f"the database server is read-only: {orig}")
    if state in _PG_BUSY:
        return busy(orig)
    if invalidated or not state or state.startswith(_PG_GONE_PREFIXES):
        return gone(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__)
    return busy(orig)


def storage_fault(exc: BaseException, paths: Iterable[Path] = ()) -> InspectorError | None:
    """The station's error for a storage failure, or None when ``exc`` is not one.

    ``paths`` are the image folder and the SQLite file, asked when the error itself is vague.
    """
    paths = list(paths)
    if isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            found = _from_disks(paths)
            return (
                found
                if isinstance(found, StorageFull)
                else StorageFull(
                    f"Disk full: {exc.strerror or exc} ({exc.filename or 'the image folder'}); "
                    "new inspections are refused until space is freed",
                    retry_after=60,
                )
            )
        if exc.errno == errno.EROFS:
            return read_only(f"{exc.filename or 'the image folder'} is on a read-only file system")
        return None
    if isinstance(exc, PoolTimeout):
        return busy("every connection of this station is in use")
    if isinstance(exc, IntegrityError):
        return None  # a constraint decided a race (an idempotency key, a unique id): the caller handles it
    if isinstance(exc, DBAPIError):
        if isinstance(exc.orig, sqlite3.Error):
            return _sqlite(exc.orig, paths)
        return _postgres(exc.orig, exc.connection_invalidated)
    return None


@contextmanager
def storage_errors(paths: Iterable[Path] = ()) -> Iterator[None]:
    """Raise the station's own error for a storage failure inside the block (anything else passes through)."""
    try:
        yield
    except (OSError, SQLAlchemyError) as exc:
        mapped = storage_fault(exc, paths)
        if mapped is None:
            raise
        raise mapped from exc


def disk_check(paths: Iterable[Path], min_free_mb: float) -> dict[str, Any]:
    """The readiness check of the disks under ``paths``: ok, a sentence for the operator, and the figures."""
    found = disks(paths)
    read_only_disks = [d for d in found if d.read_only]
    low = [d for d in found if d.free_mb < max(min_free_mb, _NEARLY_FULL_MB)]  # full is full, whatever the setting
    if read_only_disks:
        detail = read_only(f"{read_only_disks[0].path} is mounted read-only").message
    elif low:
        detail = full(low[0], min_free_mb or None).message
    elif found:
        least = min(found, key=lambda d: d.free_mb)
        detail = f"{least.free_mb:.0f} MB free on {least.path} (storage.min_free_mb = {min_free_mb:g})"
    else:
        detail = "no local disk to watch (the database is a server)"
    return {
        "ok": not read_only_disks and not low,
        "detail": detail,
        "free_mb": round(min(d.free_mb for d in found), 1) if found else None,
        "min_free_mb": min_free_mb,
        "read_only": bool(read_only_disks),
    }
