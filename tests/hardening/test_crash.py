"""Crash safety: SIGKILL a served station while inspections stream in, restart it, and find everything.

Every request that got a 2xx is there with its images byte for byte, SQLite's
integrity check passes, a retry of an unanswered request with its
Idempotency-Key makes exactly one inspection (once the lease of the request
that died with the process has run out, as do the delivery leases), and the webhooks that were still
pending when the process died are delivered by the next one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_webhooks import Receiver
from tests.hardening import images

THREADS = 3
ANSWERED_BEFORE_KILL = 5
LEASE_S = 5


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_sigkill_mid_stream_loses_nothing(served_factory: Any, tmp_path: Path) -> None:
    receiver = Receiver([503] * 100_000)  # the WMS is down: every delivery stays pending
    try:
        _run(served_factory, tmp_path, receiver)
    finally:
        receiver.close()


def _run(served_factory: Any, tmp_path: Path, receiver: Receiver) -> None:
    # A retry, and the next delivery attempt, wait for the leases that died with the process
    # (120 s and 60 s by default); keep them short here.
    env = {
        "INSPECTOR_WEBHOOKS__MAX_ATTEMPTS": "100000",
        "INSPECTOR_WEBHOOKS__LEASE_S": str(LEASE_S),
        "INSPECTOR_SERVER__IDEMPOTENCY_WAIT_S": str(LEASE_S),
    }
    first = served_factory(**env)
    keys = first.bootstrap_keys()
    admin = {"X-API-Key": keys["admin"]}
    hook = httpx.post(f"{first.url}/v1/webhooks", headers=admin, json={"url": receiver.url}, timeout=30)
    assert hook.status_code == 201, hook.text

    answered: dict[str, tuple[str, list[bytes]]] = {}
    unanswered: dict[str, list[bytes]] = {}
    refused: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(t: int) -> None:
        with httpx.Client(base_url=first.url, headers={"X-API-Key": keys["operator"]}, timeout=60) as client:
            for i in range(1000):
                if stop.is_set():
                    return
                key = f"crash-{t}-{i}"
                views = [images.jpeg(320, 240, seed=10_000 * t + 2 * i + v) for v in range(2)]
                try:
                    r = client.post(
                        "/v1/inspections",
                        headers={"Idempotency-Key": key},
                        files=[("images", (f"v{n}.jpg", b, "image/jpeg")) for n, b in enumerate(views)],
                    )
                except httpx.HTTPError:
                    with lock:
                        unanswered[key] = views
                    return
                with lock:
                    if r.status_code == 201:
                        answered[key] = (r.json()["id"], views)
                    else:
                        refused.append(f"{key}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client_loop, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 180
    while len(answered) < ANSWERED_BEFORE_KILL:
        assert time.monotonic() < deadline and not refused, f"{len(answered)} answered; refused: {refused}"
        time.sleep(0.02)
    first.kill()  # in the middle: the other clients have requests in flight
    stop.set()
    for t in threads:
        t.join(60)
    assert not refused, refused
    db = first.data_dir / "inspector.db"
    assert _integrity(db) == "ok"
    receiver.statuses.clear()  # the WMS is back

    second = served_factory(first.data_dir, **env)
    with httpx.Client(base_url=second.url, headers={"X-API-Key": keys["operator"]}, timeout=60) as client:
        for key, (iid, views) in answered.items():
            r = client.get(f"/v1/inspections/{iid}")
            assert r.status_code == 200, f"{key}: {r.text}"
            assert len(r.json()["views"]) == len(views)
            for n, data in enumerate(views):
                got = client.get(f"/v1/inspections/{iid}/images/{n}")
                assert got.status_code == 200 and got.content == data, f"{key} view {n}"
        retried = {}
        for key, views in unanswered.items():
            r = client.post(
                "/v1/inspections",
                headers={"Idempotency-Key": key},
                files=[("images", (f"v{n}.jpg", b, "image/jpeg")) for n, b in enumerate(views)],
            )
            assert r.status_code == 201, f"retry of {key}: {r.text}"
            retried[key] = r.json()["id"]
        stored = client.get("/v1/inspections?limit=200").json()["items"]
    ids = [b["id"] for b in stored]
    assert len(ids) == len(set(ids)) == len(answered) + len(retried), "one inspection per Idempotency-Key"
    assert {iid for iid, _ in answered.values()} | set(retried.values()) == set(ids)

    # Every inspection.completed event is delivered, including those pending at the kill.
    wanted = set(ids)
    deadline = time.monotonic() + 60
    delivered: set[str] = set()
    while not wanted <= delivered:
        assert time.monotonic() < deadline, f"not delivered: {sorted(wanted - delivered)}"
        time.sleep(0.1)
        with receiver.arrived:
            for _headers, body, status in receiver.requests:
                if status != 200:  # refused, or cut short by the SIGKILL (then its body may be empty)
                    continue
                event = json.loads(body)
                if event["type"] == "inspection.completed":
                    delivered.add(event["data"]["id"])
    second.stop()
    assert _integrity(db) == "ok"
    print(
        f"\ncrash: {len(answered)} answered before SIGKILL, {len(unanswered)} in flight retried, "
        f"{len(wanted)} inspections after restart, all webhooks delivered, integrity_check ok"
    )
