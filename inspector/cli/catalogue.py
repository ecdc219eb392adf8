"""``inspector catalogue import|validate|show``: the retailer's own catalogue, under their own header names.

``import`` writes the normalised catalogue to ``<data dir>/catalogue.json``, which the
station serves from its next start, before ``disposition.catalogue_file``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from inspector.config import Settings
from inspector.disposition.catalogue import Catalogue, CatalogueError, parse_columns
from inspector.disposition.loaders import load_catalogue, serving_catalogue_file, write_catalogue
from inspector.items import category_key
from inspector.taxonomy import Taxonomy, load_taxonomy

catalogue_app = typer.Typer(
    help="The SKU catalogue: import the retailer's CSV or JSON, validate it, show one SKU.", no_args_is_help=True
)

Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="their header names for our fields, e.g. sku=ItemNo,price_new=RRP,category=Dept,name=Description; "
        "every other column is kept as extra",
    ),
]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="the station's data folder (default: the settings')")]


def _read(path: Path, columns: str | None, *, as_json: bool = False) -> Catalogue:
    """The parsed file; on bad content every problem on its own stderr line (or one JSON report), exit 1."""
    mapping = parse_columns(columns)
    try:
        return load_catalogue(path, mapping)
    except CatalogueError as exc:
        if as_json:
            rows = [{"where": e.where, "column": e.column, "problem": e.problem} for e in exc.errors]
            typer.echo(json.dumps({"file": str(path), "ok": False, "errors": rows}, indent=2, ensure_ascii=False))
            raise typer.Exit(1) from None
        for error in exc.errors:
            typer.echo(f"error: {error}", err=True)
        typer.echo(f"{len(exc.errors)} problem(s) in {path}: nothing imported", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def census(catalogue: Catalogue, taxonomy: Taxonomy) -> dict[str, Any]:
    """SKUs per category (case ignored, first spelling shown) and the categories no mapping entry matches."""
    spelling: dict[str, str] = {}
    for s in catalogue.values():
        spelling.setdefault(category_key(s.category), s.category)
    counts = Counter(spelling[category_key(s.category)] for s in catalogue.values())
    unmapped = sorted((c for c in counts if not taxonomy.resolve(c).mapped), key=str.casefold)
    return {"skus": len(catalogue), "categories": dict(counts), "unmapped": unmapped, "taxonomy": taxonomy.version}


def _summary(catalogue: Catalogue, taxonomy: Taxonomy) -> list[str]:
    """:func:`census` in words."""
    c = census(catalogue, taxonomy)
    lines = [f"{c['skus']} SKUs in {len(c['categories'])} categories (taxonomy {c['taxonomy']})"]
    if c["unmapped"]:
        listed = ", ".join(f"{u} ({c['categories'][u]})" for u in c["unmapped"])
        lines.append(f"not mapped, graded by the generic rubric and valued by the generic table: {listed}")
    else:
        lines.append("every category is mapped")
    return lines


@catalogue_app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="the retailer's .csv or .json")],
    columns: Columns = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report (or every bad row) as JSON")] = False,
) -> None:
    """Check a catalogue without writing anything: exit 1 naming every bad row (line, column, why)."""
    settings = Settings()
    catalogue = _read(file, columns, as_json=as_json)
    taxonomy = load_taxonomy(settings.disposition.taxonomy_file)
    if as_json:
        typer.echo(json.dumps({"file": str(file), "ok": True, **census(catalogue, taxonomy)}, indent=2))
        return
    for line in _summary(catalogue, taxonomy):
        typer.echo(line)


@catalogue_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="the retailer's .csv or .json")],
    columns: Columns = None,
    data_dir: DataDir = None,
) -> None:
    """Validate and write the normalised catalogue where the station loads it (atomically: all or nothing)."""
    settings = Settings()
    catalogue = _read(file, columns)
    folder = data_dir or settings.storage.data_dir
    path = write_catalogue(catalogue, folder, str(file))
    for line in _summary(catalogue, load_taxonomy(settings.disposition.taxonomy_file)):
        typer.echo(line)
    typer.echo(f"written to {path}: the station serves it from its next start")


@catalogue_app.command("show")
def show_cmd(
    sku: Annotated[str, typer.Argument(help="the SKU id")],
    data_dir: DataDir = None,
    catalogue_file: Annotated[
        Path | None, typer.Option("--catalogue", help="read this file instead of the one the station serves")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """One SKU as the station serves it: its fields, its category's mapping and the retailer's extra columns."""
    settings = Settings()
    path = catalogue_file or serving_catalogue_file(
        settings.disposition.catalogue_file, data_dir or settings.storage.data_dir
    )
    catalogue = load_catalogue(path)
    if sku not in catalogue:
        raise ValueError(f"unknown SKU {sku!r}: not in {catalogue.source}")
    entry = catalogue[sku]
    mapping = load_taxonomy(settings.disposition.taxonomy_file).resolve(entry.category)
    fields = {k: v for k, v in asdict(entry).items() if k != "extra"}
    if as_json:
        out = {**fields, "extra": dict(entry.extra), "mapping": mapping.to_dict(), "source": catalogue.source}
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    width = max(len(k) for k in (*fields, *entry.extra, "value_table"))
    typer.echo(f"{sku} (from {catalogue.source})")
    for key, value in fields.items():
        typer.echo(f"  {key:<{width}}  {value}")
    typer.echo(f"mapping: {mapping.describe('rubric')}")
    for key in ("rubric", "family", "value_table"):
        typer.echo(f"  {key:<{width}}  {getattr(mapping, key) or '-'}")
    typer.echo("extra columns:" if entry.extra else "extra columns: none")
    for key, value in entry.extra.items():
        typer.echo(f"  {key:<{width}}  {value}")
