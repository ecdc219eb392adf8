"""A throw-away PostgreSQL server for the tests, from Debian's ``postgresql`` package.

initdb in a temporary folder, listening on 127.0.0.1 and a free port with its
unix socket in that folder, stopped and deleted at the end. initdb refuses to
run as root, so as root the server runs as the ``postgres`` system user. The
cluster trades durability for speed (fsync off): it only ever holds test data.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

USER = "inspector"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


def find_bindir() -> Path:
    """The folder holding initdb and postgres: $PG_BINDIR, pg_config, then Debian's versioned folders."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
            candidates.append(Path(out.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += [Path(p) for p in versions]
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    raise PostgresUnavailable("no PostgreSQL server binaries (apt-get install postgresql, or set PG_BINDIR)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """One running cluster; :meth:`create_database` hands out fresh, empty databases."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None
    databases: list[str] = field(default_factory=list)
    options: str = ""  # the server's command-line settings, kept to start it again the same way

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement in autocommit (CREATE DATABASE cannot run in a transaction); its rows."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(statement.encode())
            return list(cur.fetchall()) if cur.description else []

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its name."""
        name = "t_" + uuid.uuid4().hex[:16]
        extra = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.sql(f"CREATE DATABASE {name}{extra}")
        self.databases.append(name)
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", timeout=60)

    def start(self) -> None:
        """Start the server (again) with its options; raises PostgresUnavailable with its log when it does not."""
        log = self.root / "server.log"
        args = ["start", "-D", str(self.data), "-l", str(log), "-o", self.options, "-w", "-t", "60"]
        started = self._run(str(self.bindir / "pg_ctl"), *args, timeout=90)
        if started.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"the server did not start: {started.stderr.strip()} {tail}")


def _chown_tree(path: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster, yield it, stop it and delete its folder (raises PostgresUnavailable)."""
    bindir = find_bindir()
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server") from None
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root and runuser is missing")
        run_as = "postgres"
    # Not under pytest's tmp_path: that is private to root and the server user must reach its folder.
    root = Path(tempfile.mkdtemp(prefix="inspector-pg-", dir="/tmp" if run_as else None))
    server = PostgresServer(bindir=bindir, root=root, port=free_port(), run_as=run_as)
    try:
        if run_as:
            _chown_tree(root, run_as)
        init = server._run(
            str(bindir / "initdb"),
            "-D",
            str(server.data),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            timeout=120,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        server.options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={server.port}",
                f"-c unix_socket_directories={root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
                "-c shared_buffers=64MB",
            ]
        )
        server.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                server.sql("SELECT 1")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
