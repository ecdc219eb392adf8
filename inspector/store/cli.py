"""``inspector keys``: create, list and revoke API keys (the key is printed once, at creation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from inspector.store import Store

keys_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="data folder (default: the settings' data folder)")]
Db = Annotated[str | None, typer.Option("--db", help="database URL (default SQLite under the data folder)")]


def _open(data_dir: Path | None, db: str | None) -> Store:
    from inspector.config import Settings
    from inspector.store import Store

    settings = Settings()
    if data_dir is not None:
        settings.storage.data_dir = data_dir
    if db is not None:
        settings.storage.db_url = db
    return Store(settings.storage).open()


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
def list_(data_dir: DataDir = None, db: Db = None) -> None:
    """Every key: id, role, name, first characters, created, last used, revoked."""
    from inspector.store.keys import list_keys

    store = _open(data_dir, db)
    try:
        with store.db.read() as s:
            keys = list_keys(s)
    finally:
        store.close()
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
