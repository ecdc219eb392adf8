"""Expected returns: the WMS pushes what is coming back, the bench fills the item from it.

Through the real app on SQLite and PostgreSQL: one RMA at a time and in bulk (idempotent by
RMA + line), malformed RMAs and lines, expiry against the book's clock, the fill of an
inspection (one line, several lines, an LPN), and ``inspector returns import|show``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from inspector.pipeline import InspectionPipeline, build_pipeline
from inspector.types import utcnow
from tests.api.conftest import Api, add_keys, make_settings, served_app
from tests.api.test_feedback import FixedDetector

pytestmark = pytest.mark.api

RMA = "RMA-2026-000001"


def line(n: int = 1, **fields: Any) -> dict[str, Any]:
    """One line of a return, as a WMS sends it."""
    return {"line": n, "lpn": f"LPN{n:04d}X", "sku": f"WMS-SKU-{n}", "price": 199.0, **fields}


def entry(rma: str, n: int = 1, **fields: Any) -> dict[str, Any]:
    """One bulk entry: a line with its RMA."""
    return {"rma": rma, **line(n, **fields)}


def put(api: Api, rma: str, *lines: dict[str, Any], role: str = "wms", **body: Any) -> Any:
    return api.client.put(f"/v1/returns/{rma}", headers=api.h(role), json={"lines": list(lines), **body})


def ndjson(api: Api, rows: list[str]) -> Any:
    headers = api.h("wms", **{"content-type": "application/x-ndjson"})
    return api.client.post("/v1/returns", headers=headers, content="\n".join(rows) + "\n")


@contextmanager
def clock_at(api: Api, when: datetime) -> Iterator[None]:
    """The station's expected returns see ``when`` as now."""
    book = api.app.state.inspections.returns
    before = book.clock
    book.clock = lambda: when
    try:
        yield
    finally:
        book.clock = before


def values_known(body: dict[str, Any]) -> bool:
    """Whether the recommendation weighed the channels with values (not "value unknown" on every one)."""
    return not any("value unknown" in a["note"] for a in body["disposition"]["alternatives"])


# ------------------------------------------------------------ the scenario


@pytest.fixture
def fixed(tmp_path: Path, db_url: str | None) -> Iterator[Api]:
    """A station whose detector finds the item and two defects in any picture: every grade has a condition."""
    settings = make_settings(tmp_path, db_url=db_url)
    app = served_app(settings, build_pipeline(settings, detector=FixedDetector()))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


def test_a_return_pushed_the_day_before_fills_the_item_at_the_bench(fixed: Api) -> None:
    api = fixed
    pushed = line(1, sku="WMS-ONLY-77", category="phone", reason="changed mind", days_since_sale=12, flags=["opened"])
    with clock_at(api, utcnow() - timedelta(days=1)):
        r = put(api, RMA, pushed)
    assert r.status_code == 201, r.text
    assert r.json()["lines"][0]["sku"] == "WMS-ONLY-77"

    told = api.inspect(item={"rma": "RMA-UNANNOUNCED", "category": "phone"})
    assert told.status_code == 201, told.text
    assert told.json()["return"]["status"] == "unknown"
    assert not values_known(told.json()), "without the return the item has no value"

    r = api.inspect(item={"rma": RMA, "category": "phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["return"] == {
        "rma": RMA,
        "line": 1,
        "status": "matched",
        "lines": 1,
        "message": body["return"]["message"],
        "filled": ["sku", "price", "return_reason", "days_since_sale", "flags"],
    }
    item = body["item"]
    assert (item["sku"], item["price"], item["return_reason"], item["days_since_sale"]) == (
        "WMS-ONLY-77",
        199.0,
        "changed mind",
        12,
    )
    assert item["flags"] == ["opened"] and item["lpn"] == "LPN0001X" and item["line"] == 1
    assert values_known(body)
    assert api.sql("SELECT return_line, sku FROM inspections WHERE id = :i", i=body["id"]) == [(1, "WMS-ONLY-77")]
    assert api.client.get(f"/v1/inspections/{body['id']}", headers=api.h("wms")).json()["return"] == body["return"]
    got = api.client.get(f"/v1/returns/{RMA}", headers=api.h("operator")).json()
    assert got["inspections"] == [body["id"]] and got["source"] == "api"

    own = api.inspect(item={"rma": RMA, "price": 50.0, "sku": "OWN"}).json()
    assert (own["item"]["price"], own["item"]["sku"]) == (50.0, "OWN"), "the item's own fields win"
    assert "price" not in own["return"]["filled"] and "sku" not in own["return"]["filled"]


# ------------------------------------------------------------------- writes


def test_put_answers_201_then_200_replaces_lines_and_keeps_extra_fields(shared_api: Api) -> None:
    api, rma = shared_api, "RMA-PUT-1"
    first = put(api, rma, line(1), line(2, colour="blue", warehouse={"bay": 4}))
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/v1/returns/{rma}"
    assert [ln["line"] for ln in first.json()["lines"]] == [1, 2]
    assert first.json()["lines"][1]["extra"] == {"colour": "blue", "warehouse": {"bay": 4}}
    again = put(api, rma, line(2, colour="blue", warehouse={"bay": 4}))
    assert again.status_code == 200
    assert [ln["line"] for ln in again.json()["lines"]] == [2], "a PUT replaces the lines of the RMA"
    assert api.sql("SELECT count(*) FROM expected_returns WHERE rma = :r", r=rma) == [(1,)]
    unnumbered = put(api, "RMA-PUT-2", {"sku": "A"}, {"sku": "B", "return_reason": "too small"})
    assert [(ln["line"], ln["sku"], ln["reason"]) for ln in unnumbered.json()["lines"]] == [
        (1, "A", None),
        (2, "B", "too small"),
    ]
    # an RMA in any script: the Location header (ASCII by HTTP) carries it percent-encoded
    local = put(api, "RMA-ĐỔI-1", line(1))
    assert local.status_code == 201, local.text
    assert local.headers["location"] == "/v1/returns/RMA-%C4%90%E1%BB%94I-1"
    assert api.client.get(local.headers["location"], headers=api.h("wms")).status_code == 200


def test_delete_forgets_a_return(shared_api: Api) -> None:
    api, rma = shared_api, "RMA-DEL-1"
    assert put(api, rma, line(1), line(2)).status_code == 201
    assert api.client.delete(f"/v1/returns/{rma}", headers=api.h("wms")).status_code == 204
    assert api.client.get(f"/v1/returns/{rma}", headers=api.h("wms")).json()["code"] == "return_unknown"
    gone = api.client.delete(f"/v1/returns/{rma}", headers=api.h("wms"))
    assert (gone.status_code, gone.json()["code"]) == (404, "return_unknown")


def test_the_same_bulk_twice_is_unchanged_one_row_per_line(shared_api: Api) -> None:
    api = shared_api
    batch = [entry("RMA-BULK-1", 1), entry("RMA-BULK-1", 2), {"rma": "RMA-BULK-2", "sku": "X", "price": 5}]
    r = api.client.post("/v1/returns", headers=api.h("wms"), json=batch)
    assert r.json() == {"created": 3, "updated": 0, "unchanged": 0, "bad": []}
    r = api.client.post("/v1/returns", headers=api.h("wms"), json=batch)
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 3, "bad": []}
    rows = api.sql("SELECT rma, line FROM expected_returns WHERE rma LIKE 'RMA-BULK-%' ORDER BY rma, line")
    assert rows == [("RMA-BULK-1", 1), ("RMA-BULK-1", 2), ("RMA-BULK-2", 1)], "line defaults to 1"
    r = ndjson(api, [json.dumps(e) for e in [batch[0], {**batch[1], "price": 150.0}]])
    assert r.json() == {"created": 0, "updated": 1, "unchanged": 1, "bad": []}
    assert api.sql("SELECT price FROM expected_returns WHERE rma = 'RMA-BULK-1' AND line = 2") == [(150.0,)]


BAD_ENTRIES = [  # (JSON line, the code it is refused with)
    ('{"rma": "RMA-MIX-1", "flags": ["smelly"]}', "invalid_line"),
    ('{"rma": "RMA-MIX-1", "line": 2, "price": -1}', "invalid_line"),
    ('{"rma": "RMA-MIX-1", "line": 3, "price": NaN}', "non_finite_number"),
    ('{"rma": "RMA-MIX-1", "line": 4, "sku": ', "bad_json"),
    ('{"sku": "no rma"}', "invalid_rma"),
    ('{"rma": "RMA/SLASH", "sku": "A"}', "invalid_rma"),
    ('{"rma": "  "}', "invalid_rma"),
    ('{"rma": "RMA-MIX-1", "line": 5, "expires_at": "2000-01-01T00:00:00Z"}', "expires_in_past"),
    ("[1, 2]", "invalid_entry"),
]


def test_a_bad_entry_loses_nothing_else(shared_api: Api) -> None:
    api = shared_api
    good = [json.dumps(entry("RMA-MIX-2", 1)), json.dumps(entry("RMA-MIX-2", 2))]
    rows = [good[0], *(raw for raw, _ in BAD_ENTRIES), good[1]]
    r = ndjson(api, rows)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["updated"], out["unchanged"]) == (2, 0, 0)
    assert [(b["index"], b["code"]) for b in out["bad"]] == [(i + 1, code) for i, (_, code) in enumerate(BAD_ENTRIES)]
    assert all(b["error"] for b in out["bad"])
    assert out["bad"][0]["rma"] == "RMA-MIX-1" and "smelly" in out["bad"][0]["error"]
    assert api.sql("SELECT count(*) FROM expected_returns WHERE rma = 'RMA-MIX-1'") == [(0,)]
    assert api.sql("SELECT count(*) FROM expected_returns WHERE rma = 'RMA-MIX-2'") == [(2,)]


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        (b'{"rma": "A"}', "application/json", "bad_json"),  # an object, not an array
        (b'[{"rma": "A", "price": 1e999}]', "application/json", "non_finite_number"),
        (b"[" * 40 + b"]" * 40, "application/json", "too_deeply_nested"),
        (b"rma,sku\nA,B\n", "text/csv", "unsupported_media_type"),
    ],
)
def test_a_bulk_body_that_is_not_lines_is_refused_whole(shared_api: Api, body: bytes, kind: str, code: str) -> None:
    r = shared_api.client.post("/v1/returns", headers=shared_api.h("wms", **{"content-type": kind}), content=body)
    assert r.json()["code"] == code, r.text
    assert r.status_code in (415, 422)


def test_a_bulk_push_has_its_own_body_limit(tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None) -> None:
    settings = make_settings(tmp_path, db_url=db_url, max_bulk_mb=0.3)
    app = served_app(settings, pipeline)
    with TestClient(app) as client:
        api = Api(app=app, client=client, settings=settings, keys=add_keys(app))
        lines = [entry(f"RMA-BIG-{i:05d}", 1, reason="x" * 40) for i in range(1500)]
        body = json.dumps(lines).encode()
        assert settings.server.max_json_kb * 1000 < len(body) < 300_000, "over the JSON cap, under the bulk one"
        r = api.client.post("/v1/returns", headers=api.h("wms"), content=body)
        assert r.status_code == 200 and r.json()["created"] == 1500, r.text[:300]
        big = json.dumps(lines * 2).encode()
        r = api.client.post("/v1/returns", headers=api.h("wms"), content=big)
        assert (r.status_code, r.json()["code"]) == (413, "content_too_large")
        r = api.client.put("/v1/returns/RMA-X", headers=api.h("wms"), content=body)
        assert r.status_code == 413, "the other routes keep the JSON cap"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/returns/",  # empty
        "/v1/returns/%20%20",  # whitespace only
        "/v1/returns/%20RMA-1",  # padded
        "/v1/returns/RMA%09-1",  # a control character
        "/v1/returns/RMA%2F1",  # a slash
        "/v1/returns/" + "R" * 201,  # too long
    ],
)
def test_a_malformed_rma_is_422_invalid_rma(shared_api: Api, path: str) -> None:
    api = shared_api
    for r in (
        api.client.put(path, headers=api.h("wms"), json={"lines": [line(1)]}),
        api.client.get(path, headers=api.h("wms")),
        api.client.delete(path, headers=api.h("wms")),
    ):
        assert (r.status_code, r.json()["code"]) == (422, "invalid_rma"), r.text


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([line(1, flags=["smelly"])], "invalid_request"),
        ([line(1, price=-5)], "invalid_request"),
        ([line(1, category="a//b")], "invalid_request"),
        ([line(1, lpn="LPN 1\n")], "invalid_request"),
        ([line(1), line(1)], "duplicate_line"),
        ([], "invalid_request"),
    ],
)
def test_a_bad_line_in_a_put_is_422_and_stores_nothing(shared_api: Api, lines: list[Any], code: str) -> None:
    r = put(shared_api, "RMA-BADLINE", *lines)
    assert (r.status_code, r.json()["code"]) == (422, code), r.text
    assert shared_api.sql("SELECT count(*) FROM expected_returns WHERE rma = 'RMA-BADLINE'") == [(0,)]


def test_only_wms_and_admin_keys_announce_returns(shared_api: Api) -> None:
    api = shared_api
    assert put(api, "RMA-ROLE", line(1), role="operator").status_code == 403
    assert api.client.post("/v1/returns", headers=api.h("operator"), json=[]).status_code == 403
    assert put(api, "RMA-ROLE", line(1), role="admin").status_code == 201
    assert api.client.get("/v1/returns/RMA-ROLE", headers=api.h("operator")).status_code == 200
    assert api.client.delete("/v1/returns/RMA-ROLE", headers=api.h("operator")).status_code == 403


def test_an_lpn_finds_its_line(shared_api: Api) -> None:
    api = shared_api
    put(api, "RMA-LPN-1", line(1, lpn="LPN7001A"), line(2, lpn="LPN7001B"))
    r = api.client.get("/v1/returns", headers=api.h("operator"), params={"lpn": "LPN7001B"})
    assert r.status_code == 200
    assert (r.json()["rma"], r.json()["line"], r.json()["sku"]) == ("RMA-LPN-1", 2, "WMS-SKU-2")
    r = api.client.get("/v1/returns", headers=api.h("operator"), params={"lpn": "LPN-NOBODY"})
    assert (r.status_code, r.json()["code"]) == (404, "return_unknown")


# ------------------------------------------------------------------- expiry


def test_a_return_expires_after_the_configured_days_and_is_purged(fixed: Api) -> None:
    api = fixed
    now = utcnow()
    assert put(api, "RMA-OLD", line(1)).status_code == 201
    assert put(api, "RMA-SOON", line(1, lpn="LPN5555"), expires_at=(now + timedelta(hours=2)).isoformat()).is_success
    past = put(api, "RMA-GONE", line(1), expires_at=(now - timedelta(minutes=1)).isoformat())
    assert (past.status_code, past.json()["code"]) == (422, "expires_in_past")
    days = api.settings.returns.expire_days
    with clock_at(api, now + timedelta(hours=3)):
        assert api.client.get("/v1/returns/RMA-SOON", headers=api.h("wms")).status_code == 404
        assert api.client.get("/v1/returns", headers=api.h("wms"), params={"lpn": "LPN5555"}).status_code == 404
        assert api.client.get("/v1/returns/RMA-OLD", headers=api.h("wms")).status_code == 200
    with clock_at(api, now + timedelta(days=days, hours=1)):
        assert api.client.get("/v1/returns/RMA-OLD", headers=api.h("wms")).status_code == 404
        r = api.inspect(item={"rma": "RMA-OLD"})
        assert r.json()["return"]["status"] == "unknown" and r.json()["item"]["sku"] is None
        assert put(api, "RMA-OLD", line(1)).status_code == 201, "an expired return announced again is new"
        assert api.app.state.inspections.returns.purge() == 1
    assert api.sql("SELECT rma FROM expected_returns") == [("RMA-OLD",)]


# ----------------------------------------------------------- several lines


FILLS = [  # (what the item says, status, line filled from, sku after the fill)
    ({"rma": "RMA-MULTI"}, "ambiguous", None, None),
    ({"rma": "RMA-MULTI", "line": 2}, "matched", 2, "WMS-SKU-2"),
    ({"rma": "RMA-MULTI", "line": 5}, "unknown", None, None),
    ({"lpn": "LPN0003X"}, "matched", 3, "WMS-SKU-3"),
    ({"rma": "RMA-MULTI", "lpn": "LPN0001X"}, "matched", 1, "WMS-SKU-1"),
    ({"lpn": "LPN9999X"}, "unknown", None, None),
]


def test_several_lines_need_a_line_or_an_lpn(fixed: Api) -> None:
    api = fixed
    assert put(api, "RMA-MULTI", line(1), line(2), line(3)).status_code == 201
    for item, status, filled_from, sku in FILLS:
        r = api.inspect(item=item)
        assert r.status_code == 201, r.text
        body = r.json()
        got = (body["return"]["status"], body["return"]["line"], body["item"]["sku"])
        assert got == (status, filled_from, sku), item
        assert body["return"]["message"]
        if status == "matched":
            assert body["item"]["rma"] == "RMA-MULTI" and body["return"]["lines"] == 3
        if status == "ambiguous":
            assert "3 lines" in body["return"]["message"] and body["return"]["filled"] == []
    matched = api.sql("SELECT return_line FROM inspections WHERE return_line IS NOT NULL ORDER BY seq")
    assert matched == [(2,), (3,), (1,)]


def test_no_rma_or_lpn_means_no_return(fixed: Api) -> None:
    body = fixed.inspect(item={"sku": "SKU-X", "category": "phone", "price": 10.0}).json()
    assert body["return"] is None and "line" not in body["item"]


# ------------------------------------------------------------ command line


CSV = """RMA_NO,Ln,Item,Paid,Why,Flags,Bay
RMA-CSV-1,1,CSV-SKU-1,120.50,too small,opened;missing_accessories,B4
RMA-CSV-1,2,CSV-SKU-2,abc,broken,,B5
RMA-CSV-2,,CSV-SKU-3,80,,,
"""
COLUMNS = "rma=RMA_NO,line=Ln,sku=Item,price=Paid,reason=Why,flags=Flags"


def test_returns_import_upserts_names_bad_rows_and_show_prints_one(tmp_path: Path, db_url: str | None) -> None:
    from inspector.cli import app

    export = tmp_path / "returns.csv"
    export.write_text(CSV, encoding="utf-8")
    where = ["--data-dir", str(tmp_path / "data"), *(["--db", db_url] if db_url else [])]
    runner = CliRunner()
    first = runner.invoke(app, ["returns", "import", str(export), "--columns", COLUMNS, *where])
    assert first.exit_code == 1, first.output
    assert first.stdout.strip() == "created 2, updated 0, unchanged 0, bad 1"
    assert "line 3: invalid_line: price" in first.stderr
    again = runner.invoke(app, ["returns", "import", str(export), "--columns", COLUMNS, *where])
    assert again.stdout.strip() == "created 0, updated 0, unchanged 2, bad 1"

    shown = runner.invoke(app, ["returns", "show", "RMA-CSV-1", "--json", *where])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.stdout)
    assert [(ln["line"], ln["sku"], ln["price"], ln["flags"], ln["extra"]) for ln in found["lines"]] == [
        (1, "CSV-SKU-1", 120.5, ["missing_accessories", "opened"], {"Bay": "B4"})
    ]
    assert found["source"] == "import"
    text = runner.invoke(app, ["returns", "show", "RMA-CSV-2", *where])
    assert "line 1: sku=CSV-SKU-3 price=80.0" in text.stdout

    bad_map = runner.invoke(app, ["returns", "import", str(export), "--columns", "rma=NOPE", *where])
    assert bad_map.exit_code != 0 and "no column 'NOPE'" in str(bad_map.exception or bad_map.stderr)
