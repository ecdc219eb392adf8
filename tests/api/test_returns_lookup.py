"""Asking the WMS about an unknown return (``returns.lookup_url``), against a small WMS on 127.0.0.1.

The WMS answers some RMAs, says 404 for others, hangs on one, and is sometimes not
there at all (a port nobody listens on). An inspection never fails for it: the
return says ``lookup_failed`` and why, and the item goes on without it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspector.config import ReturnsConfig
from inspector.pipeline import InspectionPipeline, build_pipeline
from tests.api.conftest import Api, add_keys, make_settings, served_app
from tests.api.test_feedback import FixedDetector

pytestmark = pytest.mark.api

HANG_S = 3.0
KNOWN = {  # what the WMS knows, as it answers it
    "/rma/RMA-WMS-1": {"rma": "RMA-WMS-1", "lines": [{"line": 1, "lpn": "LPN8001", "sku": "W-1", "price": 310.0}]},
    "/rma/RMA-WMS-2": [{"line": 1, "sku": "W-2A", "price": 20.0}, {"line": 2, "sku": "W-2B", "price": 30.0}],
    "/lpn/LPN8002": {"rma": "RMA-WMS-3", "line": 4, "lpn": "LPN8002", "sku": "W-3", "price": 55.0},
    "/rma/RMA-WMS-BAD": {"lines": [{"line": 1, "price": "free"}]},
}


class Wms:
    """A WMS that answers what it knows, 404 for the rest, hangs on RMA-HANG; counts every request."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked[self.path] += 1
                if self.path == "/rma/RMA-HANG":
                    time.sleep(HANG_S)
                known = KNOWN.get(self.path)
                body = json.dumps(known).encode() if known is not None else b'{"error": "not found"}'
                self.send_response(200 if known is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wms() -> Iterator[Wms]:
    server = Wms()
    yield server
    server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def station(tmp_path: Path, db_url: str | None) -> Iterator[Any]:
    """Start an app whose returns are looked up at ``url`` (a template); its detector finds the same in any view."""
    started: list[TestClient] = []

    def start(url: str, **returns: Any) -> Api:
        settings = make_settings(tmp_path / str(len(started)), db_url=db_url)
        settings.returns = ReturnsConfig(lookup_url=url, lookup_timeout_s=0.5, **returns)
        app = served_app(settings, build_pipeline(settings, detector=FixedDetector()))
        client = TestClient(app)
        client.__enter__()
        started.append(client)
        return Api(app=app, client=client, settings=settings, keys=add_keys(app))

    yield start
    for client in started:
        client.__exit__(None, None, None)


def test_an_unknown_rma_is_asked_of_the_wms_stored_and_used(station: Any, wms: Wms) -> None:
    api = station(wms.base + "/rma/{rma}")
    r = api.inspect(item={"rma": "RMA-WMS-1", "category": "phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["return"]["status"], body["return"]["line"]) == ("matched", 1)
    assert (body["item"]["sku"], body["item"]["price"], body["item"]["lpn"]) == ("W-1", 310.0, "LPN8001")
    stored = api.client.get("/v1/returns/RMA-WMS-1", headers=api.h("operator")).json()
    assert stored["source"] == "lookup" and stored["inspections"] == [body["id"]]
    again = api.inspect(item={"rma": "RMA-WMS-1", "category": "phone"}).json()
    assert again["return"]["status"] == "matched"
    assert wms.asked["/rma/RMA-WMS-1"] == 1, "stored: the WMS is asked once"


def test_a_404_is_remembered_for_the_cache_time(station: Any, wms: Wms) -> None:
    api = station(wms.base + "/rma/{rma}", lookup_cache_s=60)
    for _ in range(2):
        body = api.inspect(item={"rma": "RMA-NOBODY"}).json()
        assert body["return"]["status"] == "unknown"
        assert "the WMS does not know it either" in body["return"]["message"]
    r = api.client.get("/v1/returns/RMA-NOBODY", headers=api.h("operator"), params={"lookup": 1})
    assert (r.status_code, r.json()["code"]) == (404, "return_unknown")
    assert wms.asked["/rma/RMA-NOBODY"] == 1, "the 404 is cached"
    api.app.state.inspections.returns.wms.clock = lambda: time.monotonic() + 61  # the cache time has passed
    api.inspect(item={"rma": "RMA-NOBODY"})
    assert wms.asked["/rma/RMA-NOBODY"] == 2


def test_a_hanging_wms_times_out_and_the_inspection_goes_on(station: Any, wms: Wms) -> None:
    api = station(wms.base + "/rma/{rma}")
    t0 = time.monotonic()
    r = api.inspect(item={"rma": "RMA-HANG", "sku": "SKU-X", "category": "phone", "price": 10.0})
    took = time.monotonic() - t0
    assert r.status_code == 201, r.text
    ret = r.json()["return"]
    assert ret["status"] == "lookup_failed" and "did not answer within 0.5 s" in ret["message"]
    assert took < HANG_S, f"the inspection waited {took:.1f} s for the WMS"
    assert r.json()["item"]["sku"] == "SKU-X"
    assert r.json()["timings_ms"]["return"] >= 500


def test_a_wms_that_is_down_is_said_never_a_5xx_on_inspections(station: Any) -> None:
    port = closed_port()
    api = station(f"http://127.0.0.1:{port}/rma/{{rma}}")
    r = api.inspect(item={"rma": "RMA-ANY"})
    assert r.status_code == 201, r.text
    ret = r.json()["return"]
    assert ret["status"] == "lookup_failed"
    assert f"127.0.0.1:{port} cannot be reached" in ret["message"] and "goes on without it" in ret["message"]
    r = api.client.get("/v1/returns/RMA-ANY", headers=api.h("operator"), params={"lookup": 1})
    assert (r.status_code, r.json()["code"]) == (502, "lookup_failed")
    assert "cannot be reached" in r.json()["detail"]


def test_the_page_may_ask_before_the_inspection(station: Any, wms: Wms) -> None:
    api = station(wms.base + "/rma/{rma}")
    plain = api.client.get("/v1/returns/RMA-WMS-2", headers=api.h("operator"))
    assert plain.status_code == 404, "without lookup=1 only what is stored"
    r = api.client.get("/v1/returns/RMA-WMS-2", headers=api.h("operator"), params={"lookup": 1})
    assert r.status_code == 200, r.text
    assert [(ln["line"], ln["sku"]) for ln in r.json()["lines"]] == [(1, "W-2A"), (2, "W-2B")]
    body = api.inspect(item={"rma": "RMA-WMS-2"}).json()
    assert body["return"]["status"] == "ambiguous" and body["return"]["lines"] == 2


def test_an_answer_that_cannot_be_used_is_a_failed_lookup(station: Any, wms: Wms) -> None:
    api = station(wms.base + "/rma/{rma}")
    body = api.inspect(item={"rma": "RMA-WMS-BAD"}).json()
    assert body["return"]["status"] == "lookup_failed" and "price" in body["return"]["message"]
    assert api.sql("SELECT count(*) FROM expected_returns") == [(0,)]


def test_an_lpn_template_finds_the_rma(station: Any, wms: Wms) -> None:
    api = station(wms.base + "/lpn/{lpn}")
    body = api.inspect(item={"lpn": "LPN8002"}).json()
    assert (body["return"]["status"], body["return"]["rma"], body["return"]["line"]) == ("matched", "RMA-WMS-3", 4)
    assert (body["item"]["rma"], body["item"]["sku"]) == ("RMA-WMS-3", "W-3")
    no_lpn = api.inspect(item={"rma": "RMA-WMS-1"}).json()
    assert no_lpn["return"]["status"] == "unknown", "a template naming {lpn} is not asked without one"


@pytest.mark.parametrize("url", ["ftp://wms.local/rma/{rma}", "http://wms.local/rma/all", "not a url {rma}"])
def test_a_lookup_url_that_cannot_work_stops_the_start(tmp_path: Path, pipeline: InspectionPipeline, url: str) -> None:
    settings = make_settings(tmp_path)
    settings.returns = ReturnsConfig(lookup_url=url)
    with pytest.raises(ValueError, match=r"returns\.lookup_url"):
        served_app(settings, pipeline)
