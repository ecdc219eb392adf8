"""The SKU catalogue: what each product is and the rules that bind it.

Parsing is pure (text in, catalogue out); :mod:`inspector.disposition.loaders`
reads the files. Every error names the source and the line or entry.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from inspector.items import ItemInfo, Sku

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Sku))
REQUIRED: tuple[str, ...] = ("sku", "category", "price_new")
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


def _convert(raw: Mapping[str, Any], where: str) -> Sku:
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown}; expected some of {list(COLUMNS)}")
    missing = [c for c in REQUIRED if raw.get(c) in (None, "")]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or (isinstance(value, str) and value.strip() == "" and key not in REQUIRED):
            continue
        try:
            if key in _BOOL_FIELDS:
                if isinstance(value, bool):
                    values[key] = value
                elif str(value).strip().lower() in _BOOL:
                    values[key] = _BOOL[str(value).strip().lower()]
                else:
                    raise ValueError(f"must be true or false, got {value!r}")
            elif key in _INT_FIELDS:
                values[key] = int(str(value).strip())
            elif key in _FLOAT_FIELDS:
                values[key] = float(str(value).strip())
            else:
                values[key] = str(value).strip()
        except ValueError as exc:
            raise ValueError(f"{where}: {key}: {exc}") from None
    try:
        return Sku(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _build(entries: list[tuple[str, Mapping[str, Any]]], source: str) -> Catalogue:
    skus: dict[str, Sku] = {}
    for where, raw in entries:
        sku = _convert(raw, where)
        if sku.sku in skus:
            raise ValueError(f"{where}: duplicate SKU {sku.sku!r}")
        skus[sku.sku] = sku
    return Catalogue(skus=skus, source=source)


def parse_catalogue_csv(text: str, source: str = "catalogue.csv") -> Catalogue:
    """A catalogue from CSV text with a header row (``sku,category,price_new,...``); '#' lines are comments."""
    kept = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if not ln.lstrip().startswith("#")]
    line_of = [n for n, _ in kept]  # error messages give the line number in the file
    reader = csv.DictReader(io.StringIO("\n".join(ln for _, ln in kept)))
    if reader.fieldnames is None:
        raise ValueError(f"{source}: empty catalogue (no header row)")
    header = [h.strip() for h in reader.fieldnames]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValueError(f"{source}: header lacks {', '.join(missing)}")
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for row in reader:
        where = f"{source} line {line_of[reader.line_num - 1]}"
        if None in row:
            raise ValueError(f"{where}: more values than columns")
        if all((v or "").strip() == "" for v in row.values()):
            continue
        entries.append((where, row))
    return _build(entries, source)


def parse_catalogue_json(data: Any, source: str = "catalogue.json") -> Catalogue:
    """A catalogue from parsed JSON: a list of SKU objects, or ``{"skus": [...]}``."""
    items = data.get("skus") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a list of SKU objects or {{'skus': [...]}}")
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for i, entry in enumerate(items):
        if not isinstance(entry, dict):
            raise ValueError(f"{source} entry {i}: expected an object, got {type(entry).__name__}")
        entries.append((f"{source} entry {i}", entry))
    return _build(entries, source)
