"""``inspector returns import|show``: expected returns from the WMS's own CSV export, and one return as stored.

``import`` upserts each row by RMA + line exactly as ``POST /v1/returns`` does; the
rows that cannot be stored are named by their line in the file and every other row
is stored (exit 1 when some were bad, so a script notices).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inspector.cli.store import DataDir, Db, _storage, open_store

if TYPE_CHECKING:
    from inspector.api.returns import ReturnBook
    from inspector.store.returns import Entry

returns_app = typer.Typer(
    help="Expected returns: import the WMS's CSV (upsert by RMA + line), show one return.", no_args_is_help=True
)

FIELDS = ("rma", "line", "lpn", "sku", "category", "price", "reason", "days_since_sale", "flags", "expires_at")
FLAG_SPLIT = re.compile(r"[;|,\s]+")

Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="their header names for our fields, e.g. rma=RMA_NO,sku=Item,price=Paid; a header named like a "
        f"field needs no mapping; every other column is kept as extra. Fields: {', '.join(FIELDS)}",
    ),
]


def header_of(spec: str | None, headers: list[str]) -> dict[str, str]:
    """Our field -> their header, from ``rma=RMA_NO,sku=Item``; a field not mapped is read from its own name."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        field, _, header = (s.strip() for s in part.partition("="))
        if field not in FIELDS or not header:
            raise ValueError(f"--columns {part!r}: expected FIELD=HEADER with FIELD one of {', '.join(FIELDS)}")
        if header not in headers:
            raise ValueError(f"--columns {part!r}: the file has no column {header!r} (it has {', '.join(headers)})")
        mapping[field] = header
    taken = set(mapping.values())
    for field in FIELDS:
        if field not in mapping and field in headers and field not in taken:
            mapping[field] = field
    if "rma" not in mapping:
        raise ValueError("no RMA column: name it rma or map it with --columns rma=HEADER")
    return mapping


def _row(values: dict[str, str], mapping: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a bulk entry: empty cells left out, flags split, every other column kept as extra."""
    fields = {field: values.get(header, "").strip() for field, header in mapping.items()}
    raw: dict[str, Any] = {k: v for k, v in fields.items() if v}
    if "flags" in raw:
        raw["flags"] = [f for f in FLAG_SPLIT.split(raw["flags"]) if f]
    mapped = set(mapping.values())
    for header, value in values.items():
        if header not in mapped and header is not None and value and value.strip():
            raw[header] = value.strip()
    return raw


def read_csv(path: Path, columns: str | None) -> tuple[list[Entry], list[str]]:
    """The good entries of a CSV export and one sentence per bad row (``line N: why``)."""
    try:
        return _read_csv(path, columns)
    except csv.Error as exc:
        raise ValueError(f"{path} is not a CSV file this reads: {exc}") from None


def _read_csv(path: Path, columns: str | None) -> tuple[list[Entry], list[str]]:
    from inspector.api.returns_schemas import entry_of
    from inspector.errors import InvalidInput

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        headers = [h.strip() for h in reader.fieldnames or []]
        if not headers:
            raise ValueError(f"{path} is empty: expected a header row")
        reader.fieldnames = headers
        mapping = header_of(columns, headers)
        entries: list[Entry] = []
        bad: list[str] = []
        start = reader.line_num + 1
        for values in reader:
            try:
                entries.append(entry_of(_row(values, mapping)))
            except InvalidInput as exc:
                bad.append(f"line {start}: {exc.code}: {exc.message}")
            start = reader.line_num + 1
    return entries, bad


def _book(data_dir: Path | None, db: str | None) -> ReturnBook:
    from inspector.api.returns import ReturnBook
    from inspector.config import Settings

    return ReturnBook(Settings().returns, open_store(_storage(data_dir, db)))


@returns_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="the WMS's CSV export, with a header row")],
    columns: Columns = None,
    data_dir: DataDir = None,
    db: Db = None,
) -> None:
    """Upsert every row by RMA + line: prints created, updated, unchanged and the bad rows by line number."""
    entries, bad = read_csv(file, columns)
    book = _book(data_dir, db)
    try:
        outcomes = book.push(entries, source="import")
    finally:
        book.store.close()
    counts = {k: sum(1 for o in outcomes if o == k) for k in ("created", "updated", "unchanged")}
    typer.echo(", ".join(f"{k} {v}" for k, v in counts.items()) + f", bad {len(bad)}")
    for line in bad:
        typer.echo(f"bad {line}", err=True)
    if bad:
        raise typer.Exit(1)


@returns_app.command("show")
def show_cmd(
    rma: Annotated[str, typer.Argument(help="the RMA")],
    data_dir: DataDir = None,
    db: Db = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """One expected return as stored: its live lines, when it expires, the inspections matched to it."""
    book = _book(data_dir, db)
    try:
        found, _ = book.get(rma)
    finally:
        book.store.close()
    if found is None:
        raise ValueError(f"RMA {rma} is not among the expected returns (or it expired)")
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str, ensure_ascii=False))
        return
    typer.echo(f"{rma}: {len(found['lines'])} line(s), from {found['source']}, expires {found['expires_at']:%Y-%m-%d}")
    for ln in found["lines"]:
        said = {k: ln[k] for k in ("lpn", "sku", "category", "price", "reason", "days_since_sale") if ln[k] is not None}
        flags = f" flags={','.join(ln['flags'])}" if ln["flags"] else ""
        extra = f" extra={json.dumps(ln['extra'], ensure_ascii=False)}" if ln["extra"] else ""
        typer.echo(f"  line {ln['line']}: " + " ".join(f"{k}={v}" for k, v in said.items()) + flags + extra)
    inspections = found["inspections"]
    typer.echo(f"inspections: {', '.join(inspections) if inspections else 'none yet'}")
