"""The disposition label through the API: download it, print it on a decision, and never wait for a printer.

A fake printer listens on 127.0.0.1 and records the bytes it is sent; a printer
that is down is a port nobody listens on (refused) or one that takes the
connection and never reads. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from inspector.api.app import create_app
from inspector.config import LabelsConfig
from inspector.pipeline import InspectionPipeline
from tests.api.conftest import Api, add_keys, jpeg, make_settings, served_app
from tests.fakeprinter import FakePrinter, unused_port

pytestmark = pytest.mark.api

T = TypeVar("T")
ITEM = {"rma": "RMA-2026-000042", "lpn": "LPN00098765"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@contextlib.contextmanager
def station(tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None, **labels: Any) -> Iterator[Api]:
    """The served app with ``labels`` settings (printer, format, retry_s ...)."""
    settings = make_settings(tmp_path, db_url=db_url).model_copy(update={"labels": LabelsConfig(**labels)})
    app = served_app(settings, pipeline)
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


def until(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """``check()`` once it is truthy; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(0.05)


def jobs(api: Api, inspection_id: str, **query: str) -> list[dict[str, Any]]:
    r = api.client.get("/v1/labels", params={"inspection_id": inspection_id, **query}, headers=api.h("operator"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def jobs_by_status(api: Api, status: str) -> list[dict[str, Any]]:
    r = api.client.get("/v1/labels", params={"status": status}, headers=api.h("wms"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def decide(api: Api, iid: str, body: dict[str, Any] | None = None) -> tuple[dict[str, Any], float]:
    """The decision's answer and how long it took."""
    t0 = time.monotonic()
    r = api.client.post(f"/v1/inspections/{iid}/decision", headers=api.h("operator"), json=body or {"action": "accept"})
    elapsed = time.monotonic() - t0
    assert r.status_code == 201, r.text
    return r.json(), elapsed


def codes(zpl: bytes) -> tuple[list[str], list[str]]:
    """The values of a ZPL label's Code 128 fields and of its QR codes."""
    text = zpl.decode()
    return re.findall(r"\^BC[^\^]*\^FD([^\^]*)\^FS", text), re.findall(r"\^BQN[^\^]*\^FDMA,([^\^]*)\^FS", text)


# ------------------------------------------------------------------ download


@pytest.fixture(scope="module")
def decided(shared_api: Api) -> str:
    """One accepted inspection with an RMA and an LPN on the module's app."""
    iid: str = shared_api.inspect([jpeg(seed=4)], ITEM).json()["id"]
    decide(shared_api, iid)
    return iid


@pytest.mark.parametrize(
    ("query", "media_type", "starts"),
    [
        ("", "application/zpl", b"^XA"),
        ("?format=zpl&size=2x1", "application/zpl", b"^XA"),
        ("?format=pdf", "application/pdf", b"%PDF-"),
        ("?format=pdf&size=2x1", "application/pdf", b"%PDF-"),
    ],
)
@pytest.mark.parametrize("role", ["wms", "operator", "admin"])
def test_the_label_downloads_in_each_format(
    shared_api: Api, decided: str, query: str, media_type: str, starts: bytes, role: str
) -> None:
    r = shared_api.client.get(f"/v1/inspections/{decided}/label{query}", headers=shared_api.h(role))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media_type
    assert r.content.startswith(starts)
    assert decided in r.headers["content-disposition"]


def test_the_downloaded_zpl_carries_rma_lpn_and_id(shared_api: Api, decided: str) -> None:
    r = shared_api.client.get(f"/v1/inspections/{decided}/label?format=zpl&size=4x6", headers=shared_api.h("wms"))
    assert codes(r.content) == ([ITEM["rma"], ITEM["lpn"]], [decided])


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"/v1/inspections/{UNKNOWN}/label", 404, "not_found"),
        ("/v1/inspections/{id}/label?format=png", 422, None),
        ("/v1/inspections/{id}/label?size=A4", 422, None),
        ("/v1/inspections/not-an-id/label", 422, None),
        ("/v1/labels?status=lost", 422, None),
        ("/v1/labels?inspection_id=nope", 422, None),
    ],
)
def test_bad_label_requests_are_problems(
    shared_api: Api, decided: str, path: str, status: int, code: str | None
) -> None:
    r = shared_api.client.get(path.replace("{id}", decided), headers=shared_api.h("operator"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if code is not None:
        assert r.json()["code"] == code


def test_without_a_printer_nothing_is_queued_and_a_reprint_says_why(shared_api: Api, decided: str) -> None:
    assert jobs(shared_api, decided) == []
    r = shared_api.client.post(f"/v1/inspections/{decided}/label/print", headers=shared_api.h("operator"))
    assert r.status_code == 409 and r.json()["code"] == "no_label_printer"


# ------------------------------------------------------------------ printing


def test_an_accept_prints_the_label_on_the_printer(
    tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None
) -> None:
    printer = FakePrinter()
    try:
        with station(tmp_path, pipeline, db_url, printer=f"tcp:127.0.0.1:{printer.port}", retry_s=0.1) as api:
            iid = api.inspect([jpeg(seed=5)], ITEM).json()["id"]
            body, _ = decide(api, iid)
            # queued with the decision: the job is there as soon as the decision has answered
            queued = jobs(api, iid)
            assert [j["decision_id"] for j in queued] == [body["decisions"][-1]["id"]]
            [label] = printer.wait_for(1)
            assert label.startswith(b"^XA") and label.rstrip().endswith(b"^XZ")
            assert codes(label) == ([ITEM["rma"], ITEM["lpn"]], [iid])
            assert body["final"]["disposition"].replace("_", " ").encode() in label
            done = until(lambda: [j for j in jobs(api, iid) if j["status"] == "printed"])
            assert done[0]["attempts"] == 1 and done[0]["last_error"] is None and done[0]["printed_at"]

            # an override prints a new label with the new route
            decide(api, iid, {"action": "override", "disposition": "RECYCLE", "grade": "D", "reason_code": "other"})
            second = printer.wait_for(2)[1]
            assert b"^FDRECYCLE^FS" in second and b"^FDGRADE D^FS" in second and b"^FDOVERRIDDEN^FS" in second
    finally:
        printer.close()


@pytest.mark.parametrize("down", ["refused", "never reads"])
def test_a_printer_that_is_down_never_holds_the_decision(
    tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None, down: str
) -> None:
    hung: socket.socket | None = None
    if down == "refused":
        port = unused_port()
    else:  # takes connections into its backlog and never reads them
        hung = socket.create_server(("127.0.0.1", 0), backlog=8)
        port = hung.getsockname()[1]
    printer: FakePrinter | None = None
    timeout_s = 2.0
    try:
        with station(
            tmp_path, pipeline, db_url, printer=f"tcp:127.0.0.1:{port}", retry_s=0.1, timeout_s=timeout_s
        ) as api:
            iid = api.inspect([jpeg(seed=6)], ITEM).json()["id"]
            body, elapsed = decide(api, iid)
            assert body["final"]["decided"]
            assert elapsed < timeout_s / 2, f"the decision took {elapsed:.2f} s with the printer {down}"
            said = {"refused": "refused the connection", "never reads": f"did not take the label within {timeout_s:g}"}
            failing = until(lambda: [j for j in jobs(api, iid) if j["last_error"]], timeout=3 * timeout_s)
            assert failing[0]["status"] == "pending" and said[down] in failing[0]["last_error"]
            assert [j["id"] for j in jobs_by_status(api, "pending")] == [failing[0]["id"]]

            # the printer comes back: the same job prints, no new decision
            if hung is not None:
                hung.close()
                hung = None
            printer = FakePrinter(port)
            [label] = printer.wait_for(1, timeout=6 * timeout_s)
            assert codes(label) == ([ITEM["rma"], ITEM["lpn"]], [iid])
            done = until(lambda: [j for j in jobs(api, iid) if j["status"] == "printed"], timeout=3 * timeout_s)
            assert done[0]["id"] == failing[0]["id"] and done[0]["attempts"] >= 2
            assert len(api.client.get(f"/v1/inspections/{iid}", headers=api.h()).json()["decisions"]) == 1
    finally:
        if hung is not None:
            hung.close()
        if printer is not None:
            printer.close()


def test_a_label_not_printed_in_time_is_marked_failed(
    tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None
) -> None:
    with station(
        tmp_path, pipeline, db_url, printer=f"tcp:127.0.0.1:{unused_port()}", retry_s=0.1, give_up_h=0.0002
    ) as api:
        iid = api.inspect([jpeg(seed=7)], ITEM).json()["id"]
        decide(api, iid)
        [failed] = until(lambda: jobs_by_status(api, "failed"), timeout=10)
        assert failed["inspection_id"] == iid and "refused" in failed["last_error"]
        assert failed["next_attempt_at"] is None
        assert jobs_by_status(api, "pending") == []


def test_the_folder_printer_writes_one_file_per_label(
    tmp_path: Path, pipeline: InspectionPipeline, db_url: str | None
) -> None:
    folder = tmp_path / "labels"
    folder.mkdir()
    with station(tmp_path, pipeline, db_url, printer=f"folder:{folder}", format="pdf", size="2x1", retry_s=0.1) as api:
        iid = api.inspect([jpeg(seed=8)], ITEM).json()["id"]
        decide(api, iid)
        [first] = until(lambda: sorted(folder.glob("*.pdf")))
        assert iid in first.name and first.read_bytes().startswith(b"%PDF-")

        # P on the page: the label again, for the operator, not for the WMS
        assert api.client.post(f"/v1/inspections/{iid}/label/print", headers=api.h("wms")).status_code == 403
        r = api.client.post(f"/v1/inspections/{iid}/label/print", headers=api.h("operator"))
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending" and r.json()["format"] == "pdf" and r.json()["size"] == "2x1"
        until(lambda: len(list(folder.glob("*.pdf"))) == 2)
        assert [p.name for p in folder.iterdir() if not p.name.endswith(".pdf")] == []  # no partial file left
        missing = api.client.post(f"/v1/inspections/{UNKNOWN}/label/print", headers=api.h("operator"))
        assert missing.status_code == 404


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        ({"printer": "tcp:printer.local"}, "expected tcp:HOST:PORT"),
        ({"printer": "tcp:127.0.0.1:9100", "format": "pdf"}, "raw ZPL only"),
        ({"printer": "usb:zebra"}, "unknown kind"),
    ],
)
def test_a_printer_setting_that_cannot_work_stops_the_start(tmp_path: Path, labels: dict[str, str], says: str) -> None:
    settings = make_settings(tmp_path).model_copy(update={"labels": LabelsConfig(**labels)})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=says):
        create_app(settings)


def test_the_label_routes_are_documented(shared_api: Api) -> None:
    paths = shared_api.client.get("/openapi.json").json()["paths"]
    label = paths["/v1/inspections/{inspection_id}/label"]["get"]
    assert set(label["responses"]["200"]["content"]) == {"application/zpl", "application/pdf"}
    for method, path in [
        ("get", "/v1/inspections/{inspection_id}/label"),
        ("post", "/v1/inspections/{inspection_id}/label/print"),
        ("get", "/v1/labels"),
    ]:
        op = paths[path][method]
        assert op["summary"] and op["security"] and "401" in op["responses"] and op["tags"] == ["labels"]
