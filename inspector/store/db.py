"""Engine, sessions and migrations.

SQLite is the default: WAL so readers never wait for the writer, synchronous=FULL
so a committed inspection survives a power cut, a busy timeout instead of
immediate "database is locked", and write transactions that take the write lock
up front (``BEGIN IMMEDIATE``) so two writers never deadlock on a lock upgrade.

PostgreSQL (psycopg 3) is the store a fleet of stations shares: the same schema
through the same migrations. Connecting gives up after ``connect_timeout_s`` and
waiting for a pooled connection as long, so a server that is down or out of reach
answers 503 quickly instead of holding requests for a minute. Where several processes must agree (migrating,
first-start keys) they take a transaction-scoped advisory lock; SQLite needs
none, its write transactions are already serialised.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from inspector.store.faults import storage_errors

MIGRATIONS = "inspector.store:migrations"

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for ``url``: ``postgresql://`` and ``postgres://`` mean psycopg 3.

    Anything but SQLite and PostgreSQL (with psycopg) is refused with a clear
    message rather than failing later on a driver that is not installed.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r} (use sqlite:///PATH or postgresql://user@host/db)")
    if scheme in _POSTGRES_SCHEMES:
        url = f"postgresql+psycopg://{rest}"
    elif scheme not in ("sqlite", "sqlite+pysqlite"):
        raise ValueError(f"unsupported database {scheme!r}: use sqlite:///PATH or postgresql://user@host/db")
    try:
        make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {exc}") from exc
    return url


# SQLite errors after which a connection is replaced: it was opened while the disk was read-only
# (it stays read-only after a remount) or its files went away.
_SQLITE_STALE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")


def _postgres_connect_args(timeout_s: float) -> dict[str, Any]:
    """libpq: give up connecting after ``timeout_s``; notice a peer that vanished mid-query (keepalives)."""
    seconds = max(2, math.ceil(timeout_s))  # libpq treats 1 s as 2 s
    return {
        "connect_timeout": seconds,
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": seconds,
        "keepalives_count": 3,
        "tcp_user_timeout": seconds * 1000,
    }


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, connect_timeout_s: float = 5.0) -> Engine:
    """An engine for ``url``; SQLite gets its durability and locking pragmas on every connection."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        # pre_ping: a bench outlives a restart of the central server. At most 12 connections per
        # bench, so that tens of benches fit in the server's max_connections.
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=4,
            max_overflow=8,
            pool_timeout=connect_timeout_s,
            connect_args=_postgres_connect_args(connect_timeout_s),
        )
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout_ms / 1000.0, "check_same_thread": False},
        pool_size=8,
        max_overflow=24,
        pool_timeout=60,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        if engine.url.database:  # which disk to ask when the error is a full or read-only one
            ctx.original_exception.db_file = Path(engine.url.database)  # type: ignore[attr-defined]
        name = getattr(ctx.original_exception, "sqlite_errorname", "") or ""
        if name.startswith(_SQLITE_STALE):  # a fresh connection after the disk is writable again
            ctx.is_disconnect = True

    return engine


@contextmanager
def busy_means_retry() -> Iterator[None]:
    """A database that is locked, full or out of reach as the station's error (503 or 507), never a 500."""
    with storage_errors():
        yield


def advisory_key(name: str) -> int:
    """A stable 63-bit key for a PostgreSQL advisory lock named ``name``."""
    return zlib.crc32(b"inspector:" + name.encode()) | (0x1D5 << 32)


class Database:
    """Sessions for reading and for writing, over one engine."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000, connect_timeout_s: float = 5.0) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, connect_timeout_s=connect_timeout_s)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def file(self) -> Path | None:
        """The SQLite database file (its disk can fill up or turn read-only); None for a server."""
        name = self.engine.url.database
        return Path(name) if self.dialect == "sqlite" and name and name != ":memory:" else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._write() as session, session.begin():
            yield session

    def lock(self, session: Session, name: str) -> None:
        """Hold the lock ``name`` until the session's transaction ends (PostgreSQL; a no-op on SQLite)."""
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(name)})

    def lock_images(self, session: Session, digests: list[str]) -> list[str]:
        """Hold the lock of each stored image (by digest) until the transaction ends; the digests, once each, in order.

        A request storing a view and the retention pruner deleting one take the same locks, always
        in one order, so neither deletes what the other is committing and two never wait crosswise.
        """
        unique = sorted(set(digests))
        for digest in unique:
            self.lock(session, f"image:{digest}")
        return unique

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with the migrations shipped in the package."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", MIGRATIONS)
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":  # stations starting together: one migrates, the others wait
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("migrate")})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()
