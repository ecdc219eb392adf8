"""The SKU catalogue: what each product is and the rules that bind it.

Parsing is pure (text in, catalogue out); :mod:`inspector.disposition.loaders`
reads and writes the files. A retailer's file keeps its own header names: a column
mapping (``{"price_new": "RRP"}``) says which of their columns is which of ours,
and every other column is kept on the SKU as ``extra``. A file with bad rows is
refused whole, with every bad row named (line, column, why).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inspector.items import ItemInfo, Sku, check_category

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Sku) if f.name != "extra")
REQUIRED: tuple[str, ...] = ("sku", "category", "price_new")
FORMAT = "inspector-catalogue/1"  # the normalised file ``inspector catalogue import`` writes
MAX_LISTED = 20  # bad rows spelled out in one error message; the CLI lists every one
_BOOL = {
    "true": True,
    "yes": True,
    "1": True,
    "y": True,
    "false": False,
    "no": False,
    "0": False,
    "n": False,
    "": False,
}
_BOOL_FIELDS = ("hygiene", "has_battery", "recalled", "personalised")
_INT_FIELDS = ("vendor_return_days",)
_FLOAT_FIELDS = ("price_new", "weight_kg")


@dataclass(frozen=True)
class Catalogue(Mapping[str, Sku]):
    """SKU id -> :class:`Sku`, read-only."""

    skus: Mapping[str, Sku] = field(default_factory=dict)
    source: str = ""

    def __getitem__(self, key: str) -> Sku:
        return self.skus[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.skus)

    def __len__(self) -> int:
        return len(self.skus)

    def resolve(self, sku_id: str | None, item: ItemInfo | None = None) -> Sku | None:
        """The catalogue entry, else a SKU built from the request's category and price, else None."""
        key = sku_id or (item.sku if item is not None else None)
        if key is not None and key in self.skus:
            return self.skus[key]
        return sku_from_item(item, key)


def sku_from_item(item: ItemInfo | None, sku_id: str | None = None) -> Sku | None:
    """A SKU for an item the catalogue does not know, from the category and price the request gives."""
    if item is None or item.category is None or item.price is None:
        return None
    return Sku(sku=sku_id or item.sku or "unlisted", category=item.category, price_new=item.price)


@dataclass(frozen=True, slots=True)
class RowError:
    """One thing wrong with one row: where (file and line or entry), the retailer's column, why."""

    where: str
    problem: str
    column: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.column}: {self.problem}" if self.column else f"{self.where}: {self.problem}"


class CatalogueError(ValueError):
    """A catalogue refused; ``errors`` holds every bad row, the message the first ``MAX_LISTED``."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = tuple(errors)
        shown = "; ".join(str(e) for e in errors[:MAX_LISTED])
        more = len(errors) - MAX_LISTED
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Our field -> the retailer's header, from ``sku=ItemNo,price_new=RRP`` (or a mapping)."""
    if spec is None:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(spec, str):
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            ours, sep, theirs = part.partition("=")
            if not sep or not ours.strip() or not theirs.strip():
                raise ValueError(f"column mapping {part!r}: expected FIELD=THEIR_HEADER, e.g. price_new=RRP")
            pairs.append((ours.strip(), theirs.strip()))
    else:
        pairs = [(k, v) for k, v in spec.items()]
    out: dict[str, str] = {}
    for ours, theirs in pairs:
        if ours not in COLUMNS:
            fields_ = ", ".join(COLUMNS)
            raise ValueError(f"column mapping {ours}={theirs}: {ours!r} is not a field; fields are {fields_}")
        if ours in out:
            raise ValueError(f"column mapping: {ours} is mapped twice ({out[ours]} and {theirs})")
        if theirs in out.values():
            raise ValueError(f"column mapping: header {theirs!r} is mapped to two fields")
        out[ours] = theirs
    return out


class _Columns:
    """Which of the retailer's keys is which of our fields; every other key is kept as extra."""

    def __init__(self, columns: Mapping[str, str]) -> None:
        self.header_of = {f: columns.get(f, f) for f in COLUMNS}
        self.field_of = {h: f for f, h in self.header_of.items()}

    def label(self, name: str) -> str:
        header = self.header_of[name]
        return header if header == name else f"{header} ({name})"

    def split(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        ours: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in raw.items():
            name = self.field_of.get(key)
            if name is not None:
                ours[name] = value
            elif key == "extra" and isinstance(value, dict):  # the normalised file's own extras
                extra.update({str(k): _text(v) for k, v in value.items()})
            elif value is not None:
                extra[key] = _text(value)
        return ours, extra


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _value(key: str, value: Any) -> Any:
    """One field's value from the file's text (or JSON value); ValueError says why not."""
    if key in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _BOOL:
            return _BOOL[str(value).strip().lower()]
        raise ValueError(f"must be true or false, got {value!r}")
    if key in _INT_FIELDS or key in _FLOAT_FIELDS:
        whole = key in _INT_FIELDS
        try:
            number: float = int(str(value).strip()) if whole else float(str(value).strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"must be a {'whole ' if whole else ''}number, got {value!r}")
    elif key == "category":
        return check_category(str(value))
    else:
        return str(value).strip()
    if number < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return number


def _convert(raw: Mapping[str, Any], where: str, cols: _Columns) -> Sku | list[RowError]:
    ours, extra = cols.split(raw)
    errors = [RowError(where, "missing", cols.label(c)) for c in REQUIRED if _blank(ours.get(c))]
    values: dict[str, Any] = {}
    for key, value in ours.items():
        if _blank(value):
            continue
        try:
            values[key] = _value(key, value)
        except ValueError as exc:
            errors.append(RowError(where, str(exc), cols.label(key)))
    if errors:
        return errors
    try:
        return Sku(**values, extra=extra)
    except ValueError as exc:
        return [RowError(where, str(exc))]


def _build(entries: list[tuple[str, Mapping[str, Any] | RowError]], source: str, cols: _Columns) -> Catalogue:
    """Every row converted, in file order; CatalogueError naming every bad one."""
    skus: dict[str, Sku] = {}
    first: dict[str, str] = {}
    errors: list[RowError] = []
    for where, raw in entries:
        sku = [raw] if isinstance(raw, RowError) else _convert(raw, where, cols)
        if isinstance(sku, list):
            errors.extend(sku)
        elif sku.sku in skus:
            errors.append(RowError(where, f"duplicate SKU {sku.sku!r} (first at {first[sku.sku]})", cols.label("sku")))
        else:
            skus[sku.sku] = sku
            first[sku.sku] = where.removeprefix(f"{source} ")
    if errors:
        raise CatalogueError(errors)
    return Catalogue(skus=skus, source=source)


def _dialect(header_line: str) -> type[csv.Dialect] | csv.Dialect:
    """Comma, semicolon, tab or pipe: whichever the header row uses."""
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def parse_catalogue_csv(
    text: str, source: str = "catalogue.csv", columns: Mapping[str, str] | None = None
) -> Catalogue:
    """A catalogue from CSV text with a header row; '#' lines are comments; ``columns``: see the module docstring."""
    cols = _Columns(columns or {})
    kept = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if not ln.lstrip().startswith("#")]
    line_of = [n for n, _ in kept]  # error messages give the line number in the file
    body = "\n".join(ln for _, ln in kept)
    header_line = next((ln for _, ln in kept if ln.strip()), "")
    reader = csv.DictReader(io.StringIO(body), dialect=_dialect(header_line))
    if reader.fieldnames is None:
        raise ValueError(f"{source}: empty catalogue (no header row)")
    header = [h.strip() for h in reader.fieldnames]
    reader.fieldnames = header
    missing = [cols.label(c) for c in REQUIRED if cols.header_of[c] not in header]
    if missing:
        raise ValueError(f"{source}: header lacks {', '.join(missing)}; it has {', '.join(header)}")
    entries: list[tuple[str, Mapping[str, Any] | RowError]] = []
    for row in reader:
        where = f"{source} line {line_of[reader.line_num - 1]}"
        if None in row:
            entries.append((where, RowError(where, "more values than columns")))
        elif any((v or "").strip() for v in row.values()):
            entries.append((where, row))
    return _build(entries, source, cols)


def parse_catalogue_json(
    data: Any, source: str = "catalogue.json", columns: Mapping[str, str] | None = None
) -> Catalogue:
    """A catalogue from parsed JSON: a list of SKU objects, or ``{"skus": [...]}`` (the normalised form)."""
    items = data.get("skus") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a list of SKU objects or {{'skus': [...]}}")
    entries: list[tuple[str, Mapping[str, Any] | RowError]] = []
    for i, entry in enumerate(items):
        where = f"{source} entry {i}"
        bad = RowError(where, f"expected an object, got {type(entry).__name__}")
        entries.append((where, entry if isinstance(entry, dict) else bad))
    return _build(entries, source, _Columns(columns or {}))


def catalogue_document(catalogue: Catalogue, origin: str) -> dict[str, Any]:
    """The normalised catalogue (our field names, extras under ``extra``), as the station reads it back."""
    return {"format": FORMAT, "source": origin, "skus": [asdict(s) for s in catalogue.values()]}
