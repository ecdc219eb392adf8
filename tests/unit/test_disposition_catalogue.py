"""The SKU catalogue: the shipped sample, CSV and JSON parsing, lookups and every parse error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector.disposition import load_catalogue, sku_from_item
from inspector.disposition.catalogue import parse_catalogue_csv, parse_catalogue_json
from inspector.items import FAMILIES, ItemInfo, Sku

HEADER = "sku,category,price_new,hygiene,vendor_return_days\n"


def test_shipped_catalogue_covers_every_family_and_rule() -> None:
    cat = load_catalogue()
    skus = list(cat.values())
    assert {s.category for s in skus} == set(FAMILIES)
    assert any(s.hygiene for s in skus)
    assert any(s.has_battery for s in skus)
    assert any(s.recalled for s in skus)
    assert any(s.personalised for s in skus)
    assert any(s.vendor_return_days > 0 for s in skus)
    assert cat["BT-SHP01"] == Sku(
        sku="BT-SHP01", category="bottle", price_new=9.9, name="Shampoo 500 ml", hygiene=True, weight_kg=0.55
    )


def test_csv_errors_give_the_file_line() -> None:
    text = "# comment 1\n# comment 2\n" + HEADER + "A1,shoe,10,no,0\n\nA2,shoe,x,no,0\n"
    with pytest.raises(ValueError, match=r"cat\.csv line 6: price_new"):
        parse_catalogue_csv(text, "cat.csv")


def test_csv_comments_blank_lines_and_booleans() -> None:
    text = "# a comment\n" + HEADER + "A1,shoe,10,yes,0\n\nA2,bottle,5.5,TRUE,30\nA3,garment,3,,\n"
    cat = parse_catalogue_csv(text)
    assert [s.sku for s in cat.values()] == ["A1", "A2", "A3"]
    assert (cat["A1"].hygiene, cat["A2"].hygiene, cat["A3"].hygiene) == (True, True, False)
    assert cat["A2"].vendor_return_days == 30 and cat["A2"].price_new == 5.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header row"),
        ("sku,category\nA,shoe\n", "header lacks price_new"),
        (HEADER + "A,shoe,1,maybe,0\n", "line 2: hygiene: must be true or false"),
        (HEADER + "A,shoe,cheap,no,0\n", "line 2: price_new"),
        (HEADER + "A,shoe,-1,no,0\n", "line 2: price_new: must not be negative"),
        (HEADER + "A,shoe,1,no,0\nB,toys//lego,1,no,0\n", "line 3: category: category 'toys//lego' has an empty level"),
        (HEADER + "A,shoe,1,no,0\nA,shoe,2,no,0\n", "line 3: sku: duplicate SKU 'A' \\(first at line 2\\)"),
        (HEADER + "A,shoe,1,no,0,extra\n", "line 2: more values than columns"),
        (HEADER + ",shoe,1,no,0\n", "line 2: sku: missing"),
        (HEADER + "A,shoe,1,no,2.5\n", "line 2: vendor_return_days"),
    ],
)
def test_csv_errors_name_the_row(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_catalogue_csv(text, "cat.csv")


@pytest.mark.parametrize(
    "data",
    [
        [{"sku": "J1", "category": "phone", "price_new": 100, "has_battery": True}],
        {"skus": [{"sku": "J1", "category": "phone", "price_new": "100", "has_battery": "yes"}]},
    ],
)
def test_json_catalogue(data: object) -> None:
    cat = parse_catalogue_json(data)
    assert cat["J1"] == Sku(sku="J1", category="phone", price_new=100.0, has_battery=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": []}, "expected a list"),
        (["PH-1"], "entry 0: expected an object"),
        ([{"sku": "J", "category": "phone"}], "entry 0: price_new: missing"),
        ([{"sku": "J", "category": "phone", "price_new": 1, "recalled": 3}], "recalled: must be true or false"),
    ],
)
def test_json_errors(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_catalogue_json(data)


def test_load_from_files(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(HEADER + "A1,shoe,10,no,0\n")
    (tmp_path / "c.json").write_text(json.dumps([{"sku": "B1", "category": "tablet", "price_new": 1}]))
    assert list(load_catalogue(tmp_path / "c.csv")) == ["A1"]
    assert list(load_catalogue(tmp_path / "c.json")) == ["B1"]


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("missing.csv", None, FileNotFoundError, "catalogue not found"),
        ("c.txt", b"x", ValueError, "must be .csv or .json"),
        ("c.json", b"{not json", ValueError, "not valid JSON"),
        ("c.csv", b"\xff\xfe\x00bad", ValueError, "not UTF-8"),
    ],
)
def test_load_errors(tmp_path: Path, name: str, content: bytes | None, error: type[Exception], message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("sku", "item", "expected"),
    [
        ("PH-X900", ItemInfo(category="shoe", price=1.0), "catalogue"),  # the catalogue wins over the request
        ("NEW-1", ItemInfo(category="shoe", price=20.0), Sku(sku="NEW-1", category="shoe", price_new=20.0)),
        (
            None,
            ItemInfo(sku="NEW-2", category="garment", price=5.0),
            Sku(sku="NEW-2", category="garment", price_new=5.0),
        ),
        (None, ItemInfo(sku="PH-X900"), "catalogue"),
        ("NEW-1", ItemInfo(category="shoe"), None),
        ("NEW-1", ItemInfo(price=3.0), None),
    ],
)
def test_resolve(sku: str | None, item: ItemInfo, expected: object) -> None:
    cat = load_catalogue()
    got = cat.resolve(sku, item)
    if expected == "catalogue":
        assert got is cat["PH-X900"]
    else:
        assert got == expected


def test_sku_from_item_needs_category_and_price() -> None:
    assert sku_from_item(None) is None
    assert sku_from_item(ItemInfo(category="boxed", price=0.0)) == Sku(sku="unlisted", category="boxed", price_new=0.0)
