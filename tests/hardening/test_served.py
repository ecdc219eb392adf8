"""Misuse of a served station over real HTTP: a burst of retries, and what its log shows.

The server is ``inspector serve`` in a subprocess on a loopback port; its whole
output (uvicorn's access log and the app's own log) is kept and searched.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import httpx

from tests.hardening import images
from tests.hardening.conftest import Served, create_key


def test_twenty_parallel_retries_over_http_create_exactly_one_inspection(served: Served) -> None:
    key = served.bootstrap_keys()["operator"]
    views = [images.jpeg(320, 240, seed=77), images.jpeg(320, 240, seed=78)]
    barrier = threading.Barrier(20)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=served.url, headers={"X-API-Key": key}, timeout=120) as client:
            barrier.wait(30)
            r = client.post(
                "/v1/inspections",
                headers={"Idempotency-Key": "burst-over-http"},
                files=[("images", (f"v{n}.jpg", b, "image/jpeg")) for n, b in enumerate(views)],
                data={"item": '{"rma": "RMA-BURST"}'},
            )
            with lock:
                results.append(r)

    threads = [threading.Thread(target=post) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(results) == 20
    assert [r.status_code for r in results] == [201] * 20, [r.text for r in results if r.status_code != 201]
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 19
    with sqlite3.connect(served.data_dir / "inspector.db") as db:
        (n,) = db.execute("SELECT count(*) FROM inspections WHERE id = ?", (results[0].json()["id"],)).fetchone()
        assert n == 1
        (n,) = db.execute("SELECT count(*) FROM idempotency_keys WHERE key LIKE '%:burst-over-http'").fetchone()
        assert n == 1


def test_keys_never_appear_in_the_server_log(served: Served) -> None:
    boot = served.bootstrap_keys()
    wms = create_key(served.data_dir, "wms", served.env)
    wrong = ["insp_" + "z" * 43, "insp_short", "not-even-a-key"]
    used: list[str] = [boot["admin"], boot["operator"], wms, *wrong]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/inspections", {}),
        ("GET", "/v1/ready", {}),
        ("PUT", "/v1/policy", {"json": {"nonsense": True}}),
        ("POST", "/v1/inspections", {"files": [("images", ("a.jpg", images.jpeg(), "image/jpeg"))]}),
        ("POST", "/v1/inspections", {"files": [("images", ("a.jpg", b"junk", "image/jpeg"))]}),
        ("POST", "/v1/webhooks", {"json": {"url": "ftp://nowhere"}}),
        ("GET", "/v1/inspections/not-a-uuid", {}),
        ("POST", "/station/item", {"json": {"rma": "RMA-1"}}),
    ]
    statuses = set()
    with httpx.Client(base_url=served.url, timeout=60) as client:
        for key in used:
            for method, path, kw in calls:
                statuses.add(client.request(method, path, headers={"X-API-Key": key}, **kw).status_code)
            statuses.add(client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code)
    assert {200, 201, 401, 403, 422} <= statuses, statuses
    log = served.text()
    assert log.count("/v1/inspections") >= len(used), "the access log is not being captured"
    for key in used:
        assert key not in log, f"a key ({key[:9]}...) is in the server log"
        if len(key) > 12:
            assert key[5:] not in log
