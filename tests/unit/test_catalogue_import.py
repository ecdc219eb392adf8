"""The retailer's catalogue under their own header names: column mapping, extra columns kept, every bad
row named, and `inspector catalogue import|validate|show` writing where the station reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.disposition.catalogue import CatalogueError, parse_catalogue_csv, parse_catalogue_json, parse_columns
from inspector.disposition.loaders import (
    IMPORTED_CATALOGUE,
    load_catalogue,
    serving_catalogue_file,
    write_catalogue,
)

COLUMNS = "sku=ItemNo,price_new=RRP,category=Dept,name=Description"
THEIRS = (
    "ItemNo,Description,Dept,RRP,Colour,Supplier Code\n"
    "TV-55,55 inch television,Electronics/TV,499.00,black,SUP-1\n"
    "LG-1,Brick set,toys/lego,39.90,,SUP-2\n"
    "SH-9,Shampoo,personal_care,4.50,green,SUP-3\n"
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", "catalogue", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (COLUMNS, {"sku": "ItemNo", "price_new": "RRP", "category": "Dept", "name": "Description"}),
        (" sku = Item No , ", {"sku": "Item No"}),
        (None, {}),
        ("sku", "expected FIELD=THEIR_HEADER"),
        ("colour=Colour", "'colour' is not a field"),
        ("sku=A,sku=B", "sku is mapped twice"),
        ("sku=A,name=A", "header 'A' is mapped to two fields"),
    ],
)
def test_column_mapping(spec: str | None, expected: dict[str, str] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            parse_columns(spec)
    else:
        assert parse_columns(spec) == expected


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("c.csv", THEIRS, "utf-8"),
        ("c.csv", THEIRS.replace(",", ";"), "utf-8"),  # a spreadsheet's semicolons
        ("c.csv", THEIRS.replace(",", "\t"), "utf-8-sig"),  # tabs and a byte-order mark
    ],
)
def test_their_headers_and_extra_columns(tmp_path: Path, name: str, text: str, encoding: str) -> None:
    cat = load_catalogue(write(tmp_path / name, text, encoding), parse_columns(COLUMNS))
    tv = cat["TV-55"]
    assert (tv.category, tv.price_new, tv.name) == ("Electronics/TV", 499.0, "55 inch television")
    assert dict(tv.extra) == {"Colour": "black", "Supplier Code": "SUP-1"}
    assert dict(cat["LG-1"].extra) == {"Colour": "", "Supplier Code": "SUP-2"}


def test_json_with_their_keys_keeps_the_rest() -> None:
    data = [{"ItemNo": "J1", "Dept": "books", "RRP": 12, "tags": ["new", "hardback"], "pages": 320}]
    cat = parse_catalogue_json(data, "c.json", parse_columns("sku=ItemNo,category=Dept,price_new=RRP"))
    assert dict(cat["J1"].extra) == {"tags": '["new", "hardback"]', "pages": "320"}


def test_every_bad_row_is_named_with_its_column() -> None:
    text = THEIRS + "TV-55,again,Electronics/TV,1,,\n,no id,toys,1,,\nX-1,bad,toys//lego,-3,,\n"
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue_csv(text, "c.csv", parse_columns(COLUMNS))
    assert [str(e) for e in caught.value.errors] == [
        "c.csv line 5: ItemNo (sku): duplicate SKU 'TV-55' (first at line 2)",
        "c.csv line 6: ItemNo (sku): missing",
        "c.csv line 7: Dept (category): category 'toys//lego' has an empty level: levels are joined by single '/'",
        "c.csv line 7: RRP (price_new): must not be negative, got '-3'",
    ]


def test_the_station_serves_the_imported_catalogue_first(tmp_path: Path) -> None:
    configured = write(tmp_path / "configured.csv", "sku,category,price_new\nC-1,shoe,10\n")
    data = tmp_path / "data"
    assert serving_catalogue_file(None, data) is None  # the shipped sample
    assert serving_catalogue_file(configured, data) == configured
    imported = write_catalogue(load_catalogue(write(tmp_path / "t.csv", THEIRS), parse_columns(COLUMNS)), data, "t")
    assert imported == data / IMPORTED_CATALOGUE
    assert serving_catalogue_file(configured, data) == imported
    assert dict(load_catalogue(imported)["SH-9"].extra) == {"Colour": "green", "Supplier Code": "SUP-3"}


def test_import_then_show_round_trips(tmp_path: Path) -> None:
    source = write(tmp_path / "their export.csv", THEIRS)
    imported = run("import", str(source), "--columns", COLUMNS, "--data-dir", "data", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "3 SKUs in 3 categories" in imported.stdout
    assert "every category is mapped" in imported.stdout  # the shipped mapping knows all three departments
    written = json.loads((tmp_path / "data" / IMPORTED_CATALOGUE).read_text())
    assert written["source"] == str(source) and [s["sku"] for s in written["skus"]] == ["TV-55", "LG-1", "SH-9"]

    shown = run("show", "TV-55", "--data-dir", "data", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert (out["category"], out["price_new"], out["name"]) == ("Electronics/TV", 499.0, "55 inch television")
    assert out["extra"] == {"Colour": "black", "Supplier Code": "SUP-1"}
    assert out["mapping"] | {"version": ""} == {
        "category": "Electronics/TV",
        "entry": "electronics/",
        "via": [],
        "rubric": "appliance",
        "family": None,
        "value_table": "appliance",
        "version": "",
    }
    text = run("show", "TV-55", "--data-dir", "data", cwd=tmp_path).stdout
    assert "Supplier Code" in text and "value_table" in text and "appliance" in text


def test_a_bad_file_is_refused_whole_and_nothing_is_written(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", THEIRS + "Z-1,z,garden,cheap,,\nZ-2,z,,1,,\n")
    for verb in (["validate"], ["import", "--data-dir", "data"]):
        r = run(*verb, str(bad), "--columns", COLUMNS, cwd=tmp_path)
        assert r.returncode == 1
        assert r.stderr.splitlines()[:2] == [
            f"error: {bad} line 5: RRP (price_new): must be a number, got 'cheap'",
            f"error: {bad} line 6: Dept (category): missing",
        ]
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "data").exists()


def test_validate_lists_the_unmapped_categories(tmp_path: Path) -> None:
    source = write(tmp_path / "c.csv", "sku,category,price_new\nA,garden/tools,3\nB,Garden/Tools,4\nC,phone,9\n")
    r = run("validate", str(source), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 categories" in r.stdout
    assert "not mapped, graded by the generic rubric and valued by the generic table: garden/tools (2)" in r.stdout
    assert not (tmp_path / "data").exists()


def test_show_an_unknown_sku_is_one_line(tmp_path: Path) -> None:
    r = run("show", "NOPE", "--data-dir", "data", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "unknown SKU 'NOPE'" in r.stderr
