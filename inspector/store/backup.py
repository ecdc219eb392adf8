"""Online backup of a single bench's SQLite station, and restore into an empty data folder.

A backup is a folder of three parts:

- ``inspector.db``: the database, copied with SQLite's online backup API while
  the station keeps serving (one consistent snapshot; in WAL mode writers never
  wait for it), turned into a self-contained file (no ``-wal``) and checked
  with ``PRAGMA integrity_check``;
- ``images.tar``: every image file the snapshot names (the views of the
  inspections whose views are kept), streamed file by file. Files stored after
  the snapshot, and derived copies such as annotated JPEGs, are left out: the
  first are not named by the backed-up database, the second are made again on
  demand;
- ``manifest.json``: written last, so a folder without it is no backup: counts,
  the schema revision, the time, and the sha256 and size of each part.

Restore checks both parts against the manifest before it writes anything,
then puts the images back through the image store (each written, fsynced and
named by its own sha256, so a file that does not match its name is refused),
and the database last, so the restored database never names an image that is
not there. PostgreSQL stations are backed up with ``pg_dump``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tarfile
import time
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

from inspector.store.db import normalize_url
from inspector.store.images import ImageStore, _fsync_dir
from inspector.types import utcnow

FORMAT = 1
DB_PART = "inspector.db"
IMAGES_PART = "images.tar"
MANIFEST = "manifest.json"
_MEMBER = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
_CHUNK = 1 << 20
_COUNTED = ("inspections", "inspection_images", "decisions", "feedback_flags", "api_keys", "webhook_endpoints")


def sqlite_file(url: str) -> Path:
    """The database file behind a SQLite URL; a clear refusal for PostgreSQL."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(
            "this station's database is PostgreSQL: back it up with "
            "'pg_dump --format=custom --file=inspector.dump \"$INSPECTOR_STORAGE__DB_URL\"' and copy the image "
            "folder (docs/operations.md, Backups); 'inspector backup' and 'restore' are for a SQLite bench"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise ValueError("an in-memory database has nothing to back up")
    return Path(parsed.database)


class _HashingWriter:
    """A write-only file that keeps the sha256 and size of what went through it."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _private_file(path: Path) -> IO[bytes]:
    """A new file only its owner reads: the database holds webhook secrets and key hashes."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def _snapshot_facts(path: Path) -> tuple[dict[str, int], str | None, list[str], str]:
    """Counts, schema revision, the digests whose files belong in the backup, and the integrity check."""
    con = sqlite3.connect(path)
    try:
        counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in _COUNTED}  # noqa: S608
        revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
        digests = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT m.sha256 FROM inspection_images m JOIN inspections i ON i.id = m.inspection_id "
                "WHERE i.images_pruned_at IS NULL ORDER BY m.sha256"
            )
        ]
        check = "; ".join(r[0] for r in con.execute("PRAGMA integrity_check"))
    finally:
        con.close()
    return counts, revision[0] if revision else None, digests, check


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into a new, self-contained ``target``."""
    _private_file(target).close()
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # one step: one consistent snapshot; in WAL mode writers go on meanwhile
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy is one file, no -wal beside it
    finally:
        dst.close()
        src.close()
    _fsync_dir(target)


def backup(db_url: str, images: ImageStore, dest: Path, *, station_id: str = "") -> dict[str, Any]:
    """Back the station up into the new or empty folder ``dest``; returns the manifest."""
    source = sqlite_file(db_url)
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty: a backup is never written over another")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _write(source, images, dest, station_id)
    except BaseException:  # a full disk, an interrupt: leave DEST as empty as it was, so a retry may use it
        for name in (DB_PART, IMAGES_PART, MANIFEST):
            (dest / f".{name}.part").unlink(missing_ok=True)
        raise


def _write(source: Path, images: ImageStore, dest: Path, station_id: str) -> dict[str, Any]:
    t0 = time.monotonic()
    started = utcnow()
    db_tmp, tar_tmp = dest / f".{DB_PART}.part", dest / f".{IMAGES_PART}.part"
    _copy_database(source, db_tmp)
    counts, revision, digests, check = _snapshot_facts(db_tmp)
    if check != "ok":
        raise ValueError(f"the database copy fails its integrity check: {check}")
    missing: list[str] = []
    with _private_file(tar_tmp) as raw:
        out = _HashingWriter(raw)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for digest in digests:
                path = images.path_for(digest)
                try:
                    with path.open("rb") as f:
                        st = os.fstat(f.fileno())
                        info = tarfile.TarInfo(f"{digest[:2]}/{digest[2:4]}/{digest}")
                        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o644
                        tar.addfile(info, f)
                except FileNotFoundError:
                    missing.append(digest)
        raw.flush()
        os.fsync(raw.fileno())
    db_tmp.replace(dest / DB_PART)
    tar_tmp.replace(dest / IMAGES_PART)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": started.isoformat(),
        "station_id": station_id,
        "schema_revision": revision,
        "counts": counts,
        "image_files": len(digests) - len(missing),
        "missing_images": missing,
        "integrity_check": check,
        "parts": {
            DB_PART: {"sha256": file_sha256(dest / DB_PART), "bytes": (dest / DB_PART).stat().st_size},
            IMAGES_PART: {"sha256": out.sha.hexdigest(), "bytes": out.size},
        },
        "seconds": round(time.monotonic() - t0, 3),
    }
    tmp = dest / f".{MANIFEST}.part"
    with _private_file(tmp) as f:
        f.write(json.dumps(manifest, indent=2).encode())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(dest / MANIFEST)
    _fsync_dir(dest)
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src``, with both parts checked against it."""
    path = src / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{src} holds no backup ({MANIFEST} is missing: an unfinished backup?)")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        parts = manifest["parts"]
        if manifest.get("format") != FORMAT:
            raise ValueError(f"backup format {manifest.get('format')!r}; this version reads {FORMAT}")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a backup manifest: {exc}") from exc
    for name in (DB_PART, IMAGES_PART):
        part = src / name
        if not part.is_file():
            raise FileNotFoundError(f"the backup part {part} is missing")
        if file_sha256(part) != parts[name]["sha256"]:
            raise ValueError(f"the backup part {part} is damaged: its sha256 differs from the manifest's")
    return manifest


def _empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def restore(src: Path, db_url: str, images: ImageStore, data_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Restore the backup in ``src`` into an empty data folder (``force``: over what is there).

    Returns the manifest. Stop the station first: the database file is replaced.
    """
    target = sqlite_file(db_url)
    manifest = read_manifest(src)  # nothing is written before both parts are known good
    image_dir = Path(images.location)
    if not force:
        for place in {data_dir, image_dir}:
            if not _empty(place):
                raise ValueError(f"{place} is not empty: restore into an empty data folder, or pass --force")
        if target.exists():
            raise ValueError(f"{target} exists: restore into an empty data folder, or pass --force")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    images.open()
    restored = 0
    with tarfile.open(src / IMAGES_PART, mode="r|") as tar:
        for member in tar:
            found = _MEMBER.fullmatch(member.name)
            if found is None or not member.isfile() or found[1] + found[2] != found[3][:4]:
                raise ValueError(f"the backup holds an unexpected entry {member.name!r}")
            f = tar.extractfile(member)
            assert f is not None
            if images.put(f.read()) != found[3]:
                raise ValueError(f"the image {member.name} does not match its name")
            os.utime(images.path_for(found[3]), (member.mtime, member.mtime))  # its age, for the retention
            restored += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore")
    with (src / DB_PART).open("rb") as f, _private_file(tmp) as out:
        while block := f.read(_CHUNK):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    for stale in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)  # an old log must never be replayed onto the restored file
    tmp.replace(target)
    _fsync_dir(target.parent)
    counts, _revision, _digests, check = _snapshot_facts(target)
    if check != "ok" or counts != manifest["counts"]:
        raise ValueError(f"the restored database does not match the backup (integrity: {check})")
    manifest["restored_image_files"] = restored
    return manifest
