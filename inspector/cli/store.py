"""``inspector keys`` (create, list, revoke API keys; a key is printed once) and ``inspector db`` (migrations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from inspector.config import StorageConfig
    from inspector.store import Store

keys_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)
db_app = typer.Typer(help="The database: bring the schema up to date, show its revision.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="data folder (default: the settings' data folder)")]
Db = Annotated[str | None, typer.Option("--db", help="database URL (default SQLite under the data folder)")]


def _storage(data_dir: Path | None, db: str | None) -> StorageConfig:
    from inspector.config import Settings

    settings = Settings()
    if data_dir is not None:
        settings.storage.data_dir = data_dir
    if db is not None:
        settings.storage.db_url = db
    return settings.storage


def unreachable(url: str, exc: Exception) -> ValueError:
    """A one-line error for a database that does not answer (the password left out)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return ValueError(f"the database {shown_url(url)} cannot be used: {reason}")


def shown_url(url: str) -> str:
    """A database URL as it may be printed: the password left out."""
    from sqlalchemy.engine import make_url

    from inspector.store.db import normalize_url

    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def open_store(cfg: StorageConfig) -> Store:
    """The store, migrated; a database that cannot be reached is a one-line error, not a traceback."""
    from sqlalchemy.exc import OperationalError

    from inspector.store import Store

    store = Store(cfg)
    try:
        return store.open()
    except OperationalError as exc:
        store.close()
        raise unreachable(cfg.resolved_db_url(), exc) from None


def _open(data_dir: Path | None, db: str | None) -> Store:
    return open_store(_storage(data_dir, db))


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="wms, operator or admin")],
    name: Annotated[str, typer.Option("--name", help="who or what uses the key")] = "",
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Create a key and print it; it is stored hashed and cannot be shown again."""
    from inspector.store.keys import Role, create_key

    try:
        role_ = Role(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}") from None
    store = _open(data_dir, db)
    try:
        with store.db.write() as s:
            info, key = create_key(s, role_, name)
    finally:
        store.close()
    typer.echo(key)
    typer.echo(f"created {info.id} ({info.role.value}, {info.name}); the key above is not shown again", err=True)


@keys_app.command("list")
def list_(
    data_dir: DataDir = None,
    db: Db = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the keys as JSON (never the keys themselves)")] = False,
) -> None:
    """Every key: id, role, name, first characters, created, last used, revoked."""
    from inspector.store.keys import list_keys

    store = _open(data_dir, db)
    try:
        with store.db.read() as s:
            keys = list_keys(s)
    finally:
        store.close()
    if as_json:

        def iso(dt: object) -> str | None:
            return dt.isoformat() if hasattr(dt, "isoformat") else None

        rows = [
            {
                "id": k.id,
                "role": k.role.value,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": iso(k.created_at),
                "last_used_at": iso(k.last_used_at),
                "revoked_at": iso(k.revoked_at),
            }
            for k in keys
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not keys:
        typer.echo("no keys")
        return
    typer.echo(f"{'id':<17} {'role':<9} {'prefix':<10} {'created':<20} {'last used':<20} {'revoked':<20} name")
    for k in keys:

        def fmt(dt: object) -> str:
            return dt.strftime("%Y-%m-%d %H:%M:%S") if hasattr(dt, "strftime") else "-"

        typer.echo(
            f"{k.id:<17} {k.role.value:<9} {k.prefix + '…':<10} {fmt(k.created_at):<20} "
            f"{fmt(k.last_used_at):<20} {fmt(k.revoked_at):<20} {k.name}"
        )


@keys_app.command("revoke")
def revoke_(
    key_id: Annotated[str, typer.Argument(help="the key's id, as 'inspector keys list' shows it")],
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    from inspector.store.keys import revoke

    store = _open(data_dir, db)
    try:
        with store.db.write() as s:
            try:
                info = revoke(s, key_id)
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
    finally:
        store.close()
    typer.echo(f"revoked {info.id} ({info.role.value}, {info.name})")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option("--revision", help="the revision to reach")] = "head",
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Run the migrations (safe to run from several benches at once: one migrates, the others wait)."""
    from sqlalchemy.exc import OperationalError

    from inspector.store.db import Database

    cfg = _storage(data_dir, db)
    url = cfg.resolved_db_url()
    database = Database(url, busy_timeout_ms=cfg.busy_timeout_ms)
    try:
        before = database.current_revision()
        database.migrate(revision)
        after = database.current_revision()
    except OperationalError as exc:
        raise unreachable(url, exc) from None
    finally:
        database.dispose()
    typer.echo(f"{before or 'empty'} -> {after}" if before != after else f"already at {after}")


@db_app.command("current")
def db_current(
    data_dir: DataDir = None,
    db: Db = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the revision (null when empty) and database as JSON")
    ] = False,
) -> None:
    """Print the schema revision of the database (``empty`` before the first migration)."""
    from sqlalchemy.exc import OperationalError

    from inspector.store.db import Database

    cfg = _storage(data_dir, db)
    url = cfg.resolved_db_url()
    database = Database(url, busy_timeout_ms=cfg.busy_timeout_ms)
    try:
        revision = database.current_revision()
        if as_json:
            typer.echo(json.dumps({"revision": revision, "database": shown_url(url)}, indent=2))
        else:
            typer.echo(revision or "empty")
    except OperationalError as exc:
        raise unreachable(url, exc) from None
    finally:
        database.dispose()


Force = Annotated[bool, typer.Option("--force", help="restore over a data folder that is not empty")]


def prune_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would go; delete nothing")] = False,
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Delete the views of inspections past their retention (``retention`` settings); the records stay."""
    from inspector.config import Settings
    from inspector.store.retention import RetentionPolicy, prune

    settings = Settings()
    if not RetentionPolicy(settings.retention).active:
        typer.echo("nothing to prune: no retention is set (INSPECTOR_RETENTION__IMAGE_DAYS)")
        return
    store = _open(data_dir, db)
    try:
        report = prune(store.db, store.images, settings.retention, dry_run=dry_run)
    finally:
        store.close()
    typer.echo(report.summary())


def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="a new or empty folder for the backup")],
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Back up a running SQLite station: the database (online), its images and a manifest, into DEST."""
    from inspector.config import Settings
    from inspector.store.backup import IMAGES_PART, backup
    from inspector.store.images import FolderImageStore

    cfg = _storage(data_dir, db)
    images = FolderImageStore(cfg.resolved_image_dir())
    manifest = backup(cfg.resolved_db_url(), images, dest, station_id=Settings().station_id)
    size = manifest["parts"][IMAGES_PART]["bytes"]
    typer.echo(
        f"backed up {manifest['counts']['inspections']} inspections (schema {manifest['schema_revision']}) and "
        f"{manifest['image_files']} image files ({size / 1e6:.1f} MB) to {dest} in {manifest['seconds']:.1f} s"
    )
    if manifest["missing_images"]:
        typer.echo(f"warning: {len(manifest['missing_images'])} named image files were missing", err=True)


def restore_cmd(
    src: Annotated[Path, typer.Argument(help="a folder written by 'inspector backup'")],
    force: Force = False,
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Restore a backup into an empty data folder (stop the station first); the parts are checked first."""
    from inspector.store.backup import restore
    from inspector.store.images import FolderImageStore

    cfg = _storage(data_dir, db)
    images = FolderImageStore(cfg.resolved_image_dir())
    manifest = restore(src, cfg.resolved_db_url(), images, cfg.data_dir, force=force)
    typer.echo(
        f"restored {manifest['counts']['inspections']} inspections and {manifest['restored_image_files']} image "
        f"files from the backup of {manifest['created_at']} into {cfg.data_dir}; the station migrates it at start"
    )
