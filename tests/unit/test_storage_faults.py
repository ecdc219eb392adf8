"""Which storage failures the station names, and how: a table of real driver and OS errors."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from inspector.store.faults import storage_fault


def _sqlite_error(sql: str) -> sqlite3.Error:
    """A real error raised by SQLite (it carries ``sqlite_errorname``)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES ('a')")
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{sql!r} did not fail")


class _PgError(Exception):
    """Stands in for a psycopg error: the only part read is its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"server said {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(kind: type[DBAPIError], orig: BaseException) -> DBAPIError:
    return kind("INSERT ...", {}, orig)  # type: ignore[arg-type]


CASES: list[tuple[str, Callable[[], BaseException], str | None]] = [
    ("no space left", lambda: OSError(errno.ENOSPC, "No space left on device"), "storage_full"),
    ("quota", lambda: OSError(errno.EDQUOT, "Disk quota exceeded"), "storage_full"),
    ("file too large", lambda: OSError(errno.EFBIG, "File too large"), "storage_full"),
    ("read-only file system", lambda: OSError(errno.EROFS, "Read-only file system"), "storage_read_only"),
    ("another OS error is not a storage fault", lambda: OSError(errno.ENOENT, "No such file"), None),
    (
        "a unique key decided a race",
        lambda: _wrapped(IntegrityError, _sqlite_error("INSERT INTO t VALUES ('a')")),
        None,
    ),
    ("postgres: unique violation", lambda: _wrapped(IntegrityError, _PgError("23505")), None),
    ("postgres: disk full", lambda: _wrapped(OperationalError, _PgError("53100")), "storage_full"),
    ("postgres: connection lost", lambda: _wrapped(OperationalError, _PgError("08006")), "storage_unavailable"),
    ("postgres: admin shutdown", lambda: _wrapped(OperationalError, _PgError("57P01")), "storage_unavailable"),
    ("postgres: deadlock", lambda: _wrapped(OperationalError, _PgError("40P01")), "storage_busy"),
    ("postgres: read-only transaction", lambda: _wrapped(OperationalError, _PgError("25006")), "storage_read_only"),
    ("an error of our own code is not a storage fault", lambda: ValueError("bad"), None),
]


@pytest.mark.parametrize(("error", "code"), [(make, code) for _, make, code in CASES], ids=[c[0] for c in CASES])
def test_storage_faults_are_named(error: Callable[[], BaseException], code: str | None) -> None:
    fault = storage_fault(error())
    assert (fault.code if fault else None) == code
