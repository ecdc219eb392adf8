"""The expected return at the bench: the capture path fills the item from it, a line is picked, the demo seeds it.

The real app (store, inspection service, pipeline with the box detector) on SQLite;
captures are handed to :class:`~station.capture.Captures` as the station thread does.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from inspector.disposition.loaders import load_catalogue
from inspector.labelmap import default_labelmap
from inspector.pipeline import build_pipeline
from inspector.store import returns as returns_store
from inspector.types import Frame, utcnow
from station.capture import Captures, InspectionRecord
from station.demo_returns import DEMO_SLIP_SHARE, DemoReturns
from station.labels import LabelReader
from station.sources.synthetic import SyntheticBenchSource
from station.trigger import Capture
from station.web import _demo, _line_of, _lines_of, _submit
from tests.api.conftest import add_keys, make_settings, served_app
from tests.station.server import BoxDetector
from tests.station.standin import StandinBench, rma_for

CATALOGUE = load_catalogue(None)
PHONE, LAPTOP = CATALOGUE["PH-M250"], CATALOGUE["LT-W140"]


def line(n: int, sku: str, price: float, **more: Any) -> dict[str, Any]:
    return {"line": n, "sku": sku, "price": price, "reason": "changed mind", "days_since_sale": 9, **more}


@dataclass
class Bench:
    """The app, its client and keys, and the captures of one bench submitting to its service."""

    app: FastAPI
    client: TestClient
    keys: dict[str, str]
    captures: Captures
    standin: StandinBench

    def expect(self, rma: str, lines: list[dict[str, Any]]) -> None:
        """The WMS announced ``rma`` (straight into the store, as the API's route does)."""
        entries = [returns_store.Entry(rma, ln["line"], returns_store.ReturnLine(**ln)) for ln in lines]
        with self.app.state.store.db.write() as s:
            returns_store.upsert(s, entries, source="api", now=utcnow(), expire_days=30.0)

    def capture(self, item_seed: int = 0) -> InspectionRecord:
        """Put item ``item_seed`` (a QR label with its RMA on it) under the camera and capture it."""
        frame = Frame(self.standin.sample(item_seed).image, camera_id="cam0")
        self.captures.handle(Capture(frames=(frame,), still_since=1.0, captured_at=1.0), rest_at=1.0)
        return self.captures.records[-1]

    def inspection(self, record: InspectionRecord, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while record.done_at is None:
            assert time.monotonic() < deadline, "the capture was not inspected in time"
            time.sleep(0.02)
        assert record.inspection_id, record.error
        got = self.client.get(f"/v1/inspections/{record.inspection_id}", headers={"X-API-Key": self.keys["admin"]})
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body


def bench_on(app: FastAPI, client: TestClient, standin: StandinBench) -> Bench:
    """Captures of one bench submitting to ``app``'s service on the client's event loop, as the station does."""
    loop = client.portal.call(asyncio.get_running_loop)  # type: ignore[union-attr]
    captures = Captures(
        submit=_submit(app.state.inspections),
        loop=loop,
        label_reader=LabelReader(),
        lines_of=_lines_of(app.state.inspections.returns),
        show=lambda _: None,
        changed=lambda: None,
    )
    return Bench(app, client, add_keys(app), captures, standin)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    settings = make_settings(tmp_path)
    standin = StandinBench(3, labels=True)
    pipeline = build_pipeline(settings, detector=BoxDetector(standin.empty(), default_labelmap().names))
    app = served_app(settings, pipeline)
    with TestClient(app) as client:
        yield bench_on(app, client, standin)


def valued(inspection: dict[str, Any]) -> bool:
    """Whether the recommendation weighed the item's value (no alternative says "value unknown")."""
    return not any("value unknown" in (a.get("note") or "") for a in inspection["disposition"]["alternatives"])


@pytest.mark.parametrize("typed", [False, True], ids=["read-on-the-label", "typed"])
def test_an_expected_rma_fills_the_item_and_the_recommendation_has_values(bench: Bench, typed: bool) -> None:
    rma = rma_for(11) if not typed else "RMA-TYPED-1"
    bench.expect(rma, [line(1, PHONE.sku, 180.0, lpn="LPN4000000001")])
    if typed:
        bench.captures.set_item(rma, None)
    got = bench.inspection(bench.capture(11))
    item, ret = got["item"], got["return"]
    assert (item["rma"], item["sku"], item["price"], item["days_since_sale"]) == (rma, PHONE.sku, 180.0, 9)
    assert (ret["status"], ret["line"], ret["lines"]) == ("matched", 1, 1)
    assert valued(got)


def test_without_an_expected_return_the_same_item_has_no_value(bench: Bench) -> None:
    """The other side of the test above: what the expected return changes."""
    got = bench.inspection(bench.capture(11))
    assert got["item"]["rma"] == rma_for(11) and got["item"].get("price") is None
    assert got["return"]["status"] == "unknown" and not valued(got)


@pytest.mark.parametrize(
    ("pick", "up_front", "sku", "status"),
    [
        (2, False, LAPTOP.sku, "matched"),  # the capture waits, the operator picks line 2
        (2, True, LAPTOP.sku, "matched"),  # picked before the capture: it goes at once
        (None, False, None, "ambiguous"),  # the operator goes on without a line
    ],
    ids=["picked-while-waiting", "picked-before", "without"],
)
def test_a_multi_line_rma_waits_for_the_chosen_line(
    bench: Bench, pick: int | None, up_front: bool, sku: str | None, status: str
) -> None:
    rma = "RMA-TWO-LINES"
    bench.expect(rma, [line(1, PHONE.sku, 150.0), line(2, LAPTOP.sku, 999.0)])
    bench.captures.set_item(rma, None, pick if up_front else None)
    record = bench.capture(5)
    if not up_front:
        time.sleep(0.3)
        waiting = bench.captures.status()["awaiting_line"]
        assert waiting == {"capture_id": record.capture_id, "rma": rma, "lines": 2}
        assert record.done_at is None and bench.captures.in_flight == 0  # nothing was sent
        assert bench.captures.choose_line(pick) == "capture"
    got = bench.inspection(record)
    assert got["item"].get("sku") == sku and got["return"]["status"] == status and got["return"]["lines"] == 2
    assert got["return"]["line"] == pick and bench.captures.status()["awaiting_line"] is None


def test_the_next_item_releases_a_capture_still_waiting_for_its_line(bench: Bench) -> None:
    bench.expect("RMA-TWO-LINES", [line(1, PHONE.sku, 150.0), line(2, LAPTOP.sku, 999.0)])
    bench.captures.set_item("RMA-TWO-LINES", None)
    waiting = bench.capture(5)
    after = bench.capture(6)
    assert bench.inspection(waiting)["return"]["status"] == "ambiguous"
    assert bench.inspection(after)["item"]["rma"] == rma_for(6)
    assert bench.captures.choose_line(1) == "none"  # nothing waits any more


def test_an_unknown_rma_goes_on_without_it(bench: Bench) -> None:
    bench.captures.set_item("RMA-NOT-EXPECTED", None, None)
    got = bench.inspection(bench.capture(7))
    assert got["item"]["rma"] == "RMA-NOT-EXPECTED" and got["item"].get("sku") is None
    assert got["return"]["status"] == "unknown" and "RMA-NOT-EXPECTED" in got["return"]["message"]


def slip(rma: str | None = None, lpn: str | None = None, family: str = "phone") -> dict[str, Any]:
    """The metadata of a rendered item with a slip and/or an LPN sticker."""
    codes = [{"symbology": "EAN_13", "text": "4204135729362", "where": "item"}]  # the product's own barcode
    codes += [{"symbology": "QR", "text": rma, "where": "slip"}] if rma else []
    codes += [{"symbology": "EAN_13", "text": "4088812164956", "where": "slip"}]
    codes += [{"symbology": "QR", "text": lpn, "where": "item"}] if lpn else []
    return {"family": family, "codes": codes, "sku": {"price_new": 77.0}}


@pytest.mark.parametrize(
    ("meta", "rma", "families"),
    [
        (slip("RMA-2025-000001"), "RMA-2025-000001", {"phone"}),
        (slip(None, "LPN1234567890", "garment"), "RMA-DEMO-LPN1234567890", {"garment"}),
        (slip("RMA-2025-000002", family="toys"), "RMA-2025-000002", {"toys"}),  # not in the catalogue
        (slip(None, None), None, set()),
        ({"family": "phone"}, None, set()),
    ],
    ids=["slip", "lpn-only", "family-not-in-catalogue", "no-codes", "no-meta-codes"],
)
def test_the_demo_announces_a_slips_rma_with_a_sku_of_the_items_family(
    meta: dict[str, Any], rma: str | None, families: set[str]
) -> None:
    demo = DemoReturns(lambda _rma, _lines: None, CATALOGUE)
    found = demo.lines_for(meta)
    assert (found[0] if found else None) == rma
    if found is None:
        return
    assert demo.lines_for(meta) == found  # the same slip always announces the same return
    mine = found[1][0] if len(found[1]) == 1 else next(ln for ln in found[1] if ln["lpn"])
    assert {(mine["category"] or "").lower()} == families and mine["price"] > 0 and mine["reason"]
    sku = mine["sku"]
    assert sku is None if meta["family"] == "toys" else CATALOGUE[sku].category == meta["family"]


def test_the_demo_gives_two_lines_only_when_the_items_lpn_picks_its_own() -> None:
    demo = DemoReturns(lambda _rma, _lines: None, CATALOGUE)
    counts = {True: 0, False: 0}
    for n in range(200):
        rma = f"RMA-2025-{n:06d}"
        for has_lpn in (True, False):
            found = demo.lines_for(slip(rma, f"LPN{n:010d}" if has_lpn else None))
            assert found is not None
            if len(found[1]) == 2:
                counts[has_lpn] += 1
                assert sum(1 for ln in found[1] if ln["lpn"]) == 1 and [ln["line"] for ln in found[1]] == [1, 2]
    assert counts[False] == 0 and counts[True] > 0


class SlipBench(StandinBench):
    """The stand-in bench whose items come with a return slip, described as the synthetic engine does."""

    def sample(self, item_seed: int, *, family: str | None = None, defect_free: bool | None = None) -> Any:
        out = super().sample(item_seed, family="phone")
        out.meta.update(slip(f"RMA-2026-{item_seed:06d}"))
        return out


def test_the_synthetic_bench_announces_each_rendered_slip_to_the_store(bench: Bench) -> None:
    demo = _demo(bench.app.state.settings, bench.app.state.inspections.returns)
    assert demo is not None
    source = SyntheticBenchSource("cam0", seed=0, bench=SlipBench(0), on_item=demo.announce)
    source.open()  # renders the first item
    source._render_item(1)
    source.close()
    with bench.app.state.store.db.read() as s:
        stored = [returns_store.live_lines(s, f"RMA-2026-{n:06d}", utcnow()) for n in (0, 1)]
    assert demo.announced == 2 and all(lines and lines[0].source == "demo" for lines in stored)
    assert all(CATALOGUE[ln.sku].category == "phone" for lines in stored for ln in lines if ln.sku)


@pytest.mark.parametrize(
    ("body", "ok"),
    [({}, None), ({"line": None}, None), ({"line": 2}, 2), ({"line": 0}, 0), ({"line": "2"}, 0), ({"line": True}, 0)],
)
def test_a_page_request_names_a_line_from_1_to_999_or_none(body: dict[str, Any], ok: int | None) -> None:
    if ok == 0:
        with pytest.raises(HTTPException) as err:
            _line_of(body)
        assert err.value.status_code == 422
    else:
        assert _line_of(body) == ok


def _served_detector(empty: Any) -> Any:
    """The promoted model when there is one (what `make run` serves), else the box detector."""
    from inspector.config import DetectorConfig
    from inspector.detect import load_detector
    from inspector.detect.base import DetectorError
    from inspector.registry import resolve_weights

    try:
        weights, version = resolve_weights(None)
        return load_detector(DetectorConfig(), weights, version)
    except DetectorError:
        return BoxDetector(empty, default_labelmap().names)


@pytest.mark.slow
def test_the_demo_gives_the_synthetic_bench_values(tmp_path: Path) -> None:
    """The share of `make run`'s synthetic items whose recommendation has values, without and with the demo.

    The same rendered items (the default camera: seed 0, 640x480) go through the capture path twice:
    the slip or sticker read by the label reader, the item filled by the service.
    """
    n = int(os.environ.get("DEMO_ITEMS", "12"))
    source = SyntheticBenchSource("cam0", seed=0, size=(640, 480))
    source.slip_share = DEMO_SLIP_SHARE  # as build_runtime sets it when the demo is on
    source.open()
    try:
        items = [source._render_item(cycle) for cycle in range(n)]
        empty = source._empty
    finally:
        source.close()
    detector = _served_detector(empty)
    shares: dict[str, dict[str, float]] = {}
    for mode in ("without", "with"):
        settings = make_settings(tmp_path / mode)
        app = served_app(settings, build_pipeline(settings, detector=detector))
        with TestClient(app) as client:
            bench = bench_on(app, client, StandinBench(0))
            demo = _demo(settings, app.state.inspections.returns)
            assert demo is not None
            got = []
            for item in items:
                if mode == "with":
                    demo.announce(item.meta)
                frame = Frame(item.still, camera_id="cam0")
                bench.captures.handle(Capture(frames=(frame,), still_since=1.0, captured_at=1.0), rest_at=1.0)
                if bench.captures.status()["awaiting_line"]:  # nobody picks a line: the next item sends it on
                    bench.captures.choose_line(None)
                got.append(bench.inspection(bench.captures.records[-1], timeout=120))
        shares[mode] = {
            "valued": sum(valued(g) for g in got) / n,
            "manual_review": sum(g["disposition"]["path"] == "MANUAL_REVIEW" for g in got) / n,
            "read": sum(bool(g["item"].get("rma") or g["item"].get("lpn")) for g in got) / n,
        }
    print(f"demo returns over {n} synthetic items: {shares}")
    assert shares["with"]["valued"] > shares["without"]["valued"]
