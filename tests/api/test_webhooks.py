"""Webhooks: signed per Standard Webhooks, from a transactional outbox, retried, across restarts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspector.api.app import create_app
from inspector.store.webhooks import new_secret, sign, verify
from tests.api.conftest import Api, add_keys, jpeg, make_settings

pytestmark = pytest.mark.api


class Receiver:
    """A local HTTP receiver that answers with scripted statuses and records every request."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with outer.arrived:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                    outer.arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes, int]]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} deliveries, got {len(self.requests)}")
                self.arrived.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([500, 200, 200, 200])
    yield r
    r.close()


def test_standard_webhooks_reference_signature() -> None:
    """The example from the Standard Webhooks specification."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": sig,
    }
    assert verify(secret, headers, body, now=1614265330)
    assert not verify(secret, headers, body + b" ", now=1614265330)
    assert not verify(secret, headers, body, now=1614265330 + 3600), "stale timestamps are refused"
    assert not verify(new_secret(), headers, body, now=1614265330)


def test_events_are_signed_delivered_and_retried(api: Api, receiver: Receiver) -> None:
    reg = api.client.post("/v1/webhooks", headers=api.h("admin"), json={"url": receiver.url, "description": "wms"})
    assert reg.status_code == 201, reg.text
    hook = reg.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert hook["events"] == ["inspection.completed", "inspection.decided", "webhook.disabled"]
    assert "secret" not in api.client.get("/v1/webhooks", headers=api.h("admin")).json()[0]

    rec = api.inspect([jpeg(seed=31)], {"rma": "RMA-W"}).json()
    got = receiver.wait_for(2)  # the first attempt gets a 500, the retry a 200
    (h1, b1, s1), (h2, b2, s2) = got
    assert (s1, s2) == (500, 200)
    assert b1 == b2 and h1["webhook-id"] == h2["webhook-id"], "a retry is the same message"
    for h, b, _ in got:
        assert verify(secret, h, b)
        assert h["content-type"] == "application/json"
    event = json.loads(b2)
    assert event["type"] == "inspection.completed"
    assert event["data"] == rec, "the event carries the body the POST returned"

    api.client.post(f"/v1/inspections/{rec['id']}/decision", headers=api.h("operator"), json={"action": "accept"})
    h3, b3, _ = receiver.wait_for(3)[2]
    decided = json.loads(b3)
    assert decided["type"] == "inspection.decided"
    assert decided["data"]["inspection_id"] == rec["id"] and decided["data"]["final"]["decided"] is True
    assert verify(secret, h3, b3) and h3["webhook-id"] != h2["webhook-id"]

    deliveries = api.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=api.h("admin")).json()
    deadline = time.monotonic() + 5
    while any(d["status"] != "delivered" for d in deliveries) and time.monotonic() < deadline:
        time.sleep(0.05)
        deliveries = api.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=api.h("admin")).json()
    assert sorted(d["attempts"] for d in deliveries) == [1, 2]
    assert {d["status"] for d in deliveries} == {"delivered"}
    metrics = api.client.get("/metrics", headers=api.h("admin")).text
    assert 'inspector_webhook_attempts_total{outcome="failed",station="bench-1"} 1.0' in metrics
    assert 'inspector_webhook_attempts_total{outcome="delivered",station="bench-1"} 2.0' in metrics


def test_deliveries_survive_a_restart(tmp_path: Path, pipeline: Any, db_url: str | None) -> None:
    """Events queued while the receiver is down are delivered by the next process."""
    settings = make_settings(tmp_path, db_url=db_url)
    down = Receiver()
    url = down.url
    port = down.server.server_address[1]
    down.close()  # nothing listens on the port now

    app = create_app(settings, pipeline=pipeline)
    with TestClient(app) as client:
        keys = add_keys(app)
        admin = {"X-API-Key": keys["admin"]}
        secret = client.post(
            "/v1/webhooks", headers=admin, json={"url": url, "events": ["inspection.completed"]}
        ).json()["secret"]
        rec = client.post("/v1/inspections", headers=admin, files=[("images", ("a.jpg", jpeg(seed=41)))]).json()
        hook = client.get("/v1/webhooks", headers=admin).json()[0]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            d = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin).json()
            if d and d[0]["attempts"] >= 1:
                break
            time.sleep(0.05)
        assert d[0]["status"] == "pending" and d[0]["last_error"]

    # The receiver comes back on the same port; a new app on the same data folder delivers.
    from http.server import ThreadingHTTPServer

    back = Receiver()
    back.close()
    back.server = ThreadingHTTPServer(("127.0.0.1", port), back.server.RequestHandlerClass)
    back.thread = threading.Thread(target=back.server.serve_forever, daemon=True)
    back.thread.start()
    try:
        with TestClient(create_app(settings, pipeline=pipeline)):
            h, b, status = back.wait_for(1, timeout=30.0)[0]
        assert status == 200 and verify(secret, h, b)
        assert json.loads(b)["data"]["id"] == rec["id"]
    finally:
        back.close()


def test_removed_endpoints_get_nothing(api: Api, receiver: Receiver) -> None:
    hook = api.client.post("/v1/webhooks", headers=api.h("admin"), json={"url": receiver.url}).json()
    assert api.client.delete(f"/v1/webhooks/{hook['id']}", headers=api.h("admin")).status_code == 204
    assert api.client.delete(f"/v1/webhooks/{hook['id']}", headers=api.h("admin")).status_code == 404
    assert api.client.get("/v1/webhooks", headers=api.h("admin")).json() == []
    api.inspect([jpeg(seed=51)])
    time.sleep(0.3)
    assert receiver.requests == []


def test_only_subscribed_events_are_sent(api: Api) -> None:
    r = Receiver()
    try:
        api.client.post("/v1/webhooks", headers=api.h("admin"), json={"url": r.url, "events": ["inspection.decided"]})
        rec = api.inspect([jpeg(seed=52)]).json()
        api.client.post(f"/v1/inspections/{rec['id']}/decision", headers=api.h("operator"), json={"action": "accept"})
        got = r.wait_for(1)
        time.sleep(0.2)
        assert [json.loads(b)["type"] for _, b, _ in r.requests] == ["inspection.decided"]
        assert len(got) == 1
    finally:
        r.close()


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.test/x"},
        {"url": "not a url"},
        {"url": "http://user:pw@127.0.0.1/x"},
        {"url": "http://127.0.0.1/x", "events": ["inspection.exploded"]},
        {"url": "http://127.0.0.1/x", "events": []},
        {"url": "http://127.0.0.1/x", "secret": "plain-text"},
        {"url": "http://127.0.0.1/x", "secret": "whsec_c2hvcnQ="},
    ],
)
def test_bad_registrations_are_422(shared_api: Api, body: dict[str, Any]) -> None:
    api = shared_api
    r = api.client.post("/v1/webhooks", headers=api.h("admin"), json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("allowed", [False, True], ids=["refused-by-default", "allowed-by-setting"])
def test_receivers_on_the_stations_networks_need_the_setting(
    tmp_path: Path, pipeline: Any, db_url: str | None, allowed: bool
) -> None:
    settings = make_settings(tmp_path, db_url=db_url)
    settings.webhooks.allow_private_urls = allowed
    app = create_app(settings, pipeline=pipeline)
    with TestClient(app) as client:
        admin = {"X-API-Key": add_keys(app)["admin"]}
        for url in (
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://169.254.169.254/",
            "http://10.0.0.8/",
        ):
            r = client.post("/v1/webhooks", headers=admin, json={"url": url})
            if allowed:
                assert r.status_code == 201, r.text
                continue
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
            assert r.json()["code"] == "invalid_webhook" and "webhooks.allow_private_urls" in r.json()["detail"]
        assert len(client.get("/v1/webhooks", headers=admin).json()) == (4 if allowed else 0)


def test_a_disabled_endpoint_is_listed_with_its_reason_and_re_enabled(api: Api) -> None:
    """The station disabled it (410 here): the admin sees why; enabling it delivers what was kept."""
    gone, watcher = Receiver([410]), Receiver()
    try:
        admin = api.h("admin")
        hook = api.client.post("/v1/webhooks", headers=admin, json={"url": gone.url}).json()
        api.client.post("/v1/webhooks", headers=admin, json={"url": watcher.url, "events": ["webhook.disabled"]})
        rec = api.inspect([jpeg(seed=61)]).json()
        gone.wait_for(1)
        note = json.loads(watcher.wait_for(1)[0][1])
        assert note["type"] == "webhook.disabled" and note["data"]["endpoint_id"] == hook["id"]

        listed = {h["id"]: h for h in api.client.get("/v1/webhooks", headers=admin).json()}[hook["id"]]
        assert listed["disabled_at"] and listed["failing_since"] and "410" in listed["disabled_reason"]
        assert listed["deliveries"] == {"pending": 1}, "kept for when the receiver comes back"

        enabled = api.client.post(f"/v1/webhooks/{hook['id']}/enable", headers=admin)
        assert enabled.status_code == 200, enabled.text
        assert [enabled.json()[k] for k in ("disabled_at", "disabled_reason", "failing_since")] == [None] * 3
        _, body, status = gone.wait_for(2)[1]
        assert status == 200 and json.loads(body)["data"]["id"] == rec["id"], "the kept event went out"

        assert api.client.delete(f"/v1/webhooks/{hook['id']}", headers=admin).status_code == 204
        assert api.client.post(f"/v1/webhooks/{hook['id']}/enable", headers=admin).status_code == 404
    finally:
        gone.close()
        watcher.close()
