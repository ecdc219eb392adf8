"""Database gone: PostgreSQL stopped mid-load and started again; SQLite locked by another process or read-only.

While the database is out of reach every request fails fast with 503 problem details and
``Retry-After`` (never a 500, never a hang past the stated timeout); once it is back the
station works again by itself, the webhook worker delivers what was written before and after,
and every inspection acknowledged is in the store exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from inspector.config import Settings
from inspector.detect.base import Detector
from inspector.pipeline import build_pipeline
from tests.api.conftest import Api, add_keys, jpeg, make_settings, served_app
from tests.api.test_webhooks import Receiver
from tests.hardening.mounts import remount, tmpfs
from tests.pgserver import PostgresServer, PostgresUnavailable, running_postgres

PROBLEM_JSON = "application/problem+json"
SLACK_S = 2.5  # the model run, and the test's own threads on 2 shared cores


@contextlib.contextmanager
def station(settings: Settings, detector: Detector) -> Iterator[Api]:
    app = served_app(settings, build_pipeline(settings, detector=detector))
    with TestClient(app) as client:
        yield Api(app=app, client=client, settings=settings, keys=add_keys(app))


def view(seed: int) -> bytes:
    return jpeg(320, 240, seed=seed)


def assert_unavailable(r: httpx.Response, took: float, bound: float, *codes: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["code"] in codes, r.json()
    assert took <= bound, f"answered after {took:.1f} s, the bound is {bound:.1f} s"


def timed(api: Api, seed: int, **headers: str) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = api.inspect([view(seed)], **headers)
    return r, time.monotonic() - t0


def assert_kept(api: Api, acknowledged: dict[str, int]) -> None:
    for iid, seed in acknowledged.items():
        r = api.client.get(f"/v1/inspections/{iid}/images/0", headers=api.h("wms"))
        assert r.status_code == 200 and r.content == view(seed), iid


def acknowledge(api: Api, seeds: range) -> dict[str, int]:
    out = {}
    for seed in seeds:
        r = api.inspect([view(seed)])
        assert r.status_code == 201, r.text
        out[r.json()["id"]] = seed
    return out


# ------------------------------------------------------------------ SQLite locked

_HOLD_LOCK = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "c.execute('BEGIN EXCLUSIVE')\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_sqlite_locked_by_another_process_answers_503_within_the_busy_timeout(
    tmp_path: Path, detector: Detector
) -> None:
    settings = make_settings(tmp_path)
    settings.storage.busy_timeout_ms = 500
    bound = settings.storage.busy_timeout_ms / 1000 + SLACK_S
    with station(settings, detector) as api:
        acknowledged = acknowledge(api, range(2))
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(tmp_path / "data" / "inspector.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            for headers in ({}, {"Idempotency-Key": "rma-9"}):
                r, took = timed(api, 9, **headers)
                assert_unavailable(r, took, bound, "storage_busy")
            assert_kept(api, acknowledged)  # readers never wait for a writer (WAL)
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(10)
        for headers in ({}, {"Idempotency-Key": "rma-9"}):
            assert api.inspect([view(9)], **headers).status_code == 201
        assert api.sql("SELECT count(*) FROM inspections")[0][0] == len(acknowledged) + 2
        assert_kept(api, acknowledged)


# --------------------------------------------------------------- SQLite read-only


def test_sqlite_on_a_read_only_disk_answers_503_and_writes_again_after_remount(
    tmp_path: Path, detector: Detector
) -> None:
    with tmpfs(tmp_path / "disk", 16) as disk:
        settings = make_settings(disk)
        settings.storage.min_free_mb = 0
        with station(settings, detector) as api:
            acknowledged = acknowledge(api, range(2))
            # The kernel refuses a read-only remount while a file is open for writing: close the pool's files.
            for _ in range(20):
                api.app.state.store.db.engine.dispose()
                done = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, check=False)
                if done.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"could not remount {disk} read-only: {done.stderr!r}")
            try:
                r, took = timed(api, 5)
                assert_unavailable(r, took, SLACK_S, "storage_read_only")
                assert "read-only" in r.json()["detail"]
                ready = api.client.get("/v1/ready", headers=api.h("wms"))
                assert ready.status_code == 503 and "read-only" in json.dumps(ready.json())
            finally:
                remount(disk, "rw")
            r = api.inspect([view(5)])
            assert r.status_code == 201, r.text
            assert api.client.get("/v1/ready", headers=api.h("wms")).status_code == 200
            assert_kept(api, {**acknowledged, r.json()["id"]: 5})


# ------------------------------------------------------------ PostgreSQL stopped


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: stopping it must not disturb the session's."""
    cm = running_postgres()
    try:
        server = cm.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


@dataclass
class Load:
    """Client threads POSTing inspections, each retrying its own Idempotency-Key until acknowledged."""

    api: Api
    clients: int = 3
    stop: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, str] = field(default_factory=dict)  # key -> inspection id
    refused: list[tuple[int, str, float, float]] = field(default_factory=list)  # status, code, started, seconds
    answered_s: list[float] = field(default_factory=list)  # how long each acknowledged request took
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, c: int) -> None:
        n = 0
        while not self.stop.is_set():
            key = f"c{c}-{n}"
            while True:
                t0 = time.monotonic()
                r = self.api.inspect([view(c * 1000 + n)], **{"Idempotency-Key": key})
                took = time.monotonic() - t0
                with self.lock:
                    if r.status_code in (200, 201):
                        assert self.acked.setdefault(key, r.json()["id"]) == r.json()["id"]
                        self.answered_s.append(took)
                        break
                    problem = r.headers.get("content-type", "").startswith(PROBLEM_JSON)
                    self.refused.append((r.status_code, r.json().get("code", "") if problem else "", t0, took))
                time.sleep(0.2)
            n += 1

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(self.clients)]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self.stop.set()
            for t in threads:
                t.join(120)


@pytest.mark.postgres
def test_postgres_stopped_mid_load_fails_fast_and_loses_nothing(
    tmp_path: Path, detector: Detector, own_postgres: PostgresServer
) -> None:
    server = own_postgres
    name = server.create_database()
    server.sql(f"ALTER DATABASE {name} SET synchronous_commit = on")  # an acknowledged commit survives the stop
    settings = make_settings(tmp_path, db_url=server.url(name))
    settings.storage.connect_timeout_s = 2
    settings.server.idempotency_wait_s = 3  # a claim left by a request the outage cut lapses quickly
    settings.webhooks.allow_private_urls = True
    settings.webhooks.lease_s = 2
    bound = settings.storage.connect_timeout_s + SLACK_S
    receiver = Receiver()
    try:
        with station(settings, detector) as api:
            hook = api.client.post("/v1/webhooks", headers=api.h("admin"), json={"url": receiver.url})
            assert hook.status_code == 201, hook.text
            load = Load(api)
            with load.running():
                time.sleep(3)
                server.stop()
                down_at = time.monotonic()
                time.sleep(4)
                server.start()
                time.sleep(4)
            assert time.monotonic() - down_at > 4
            outage = [r for r in load.refused if r[0] == 503]
            assert outage, "no request met the stopped server"
            assert all(status == 503 for status, *_ in load.refused), load.refused
            assert {code for _, code, *_ in load.refused} <= {"storage_unavailable", "storage_busy"}, load.refused
            # sent while it was down: answered within the connect timeout; in flight at the stop: plus their model run
            slowest = max(took for _, _, started, took in load.refused if started >= down_at)
            assert slowest <= bound, f"a refusal took {slowest:.1f} s, the bound is {bound:.1f} s: {load.refused}"
            in_flight = max(took for *_, took in load.refused)
            assert in_flight <= bound + max(load.answered_s), (in_flight, max(load.answered_s))
            # every acknowledged inspection is stored exactly once, under its own key
            rows = api.sql("SELECT id FROM inspections")
            assert sorted(r[0] for r in rows) == sorted(load.acked.values())
            # the worker delivers every inspection.completed, written before, during and after the stop
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                delivered = {json.loads(body)["data"]["id"] for _, body, _ in receiver.requests}
                if delivered >= set(load.acked.values()):
                    break
                time.sleep(0.2)
            assert delivered >= set(load.acked.values())
            print(f"\nacknowledged {len(load.acked)}, {len(outage)} refused with 503 in {slowest:.2f} s at most")
    finally:
        receiver.close()


@pytest.mark.postgres
def test_a_hung_postgres_is_given_up_after_the_connect_timeout(
    tmp_path: Path, detector: Detector, own_postgres: PostgresServer
) -> None:
    """The server's port takes connections but nothing answers (a stopped postmaster): 503, not a hang."""
    server = own_postgres
    settings = make_settings(tmp_path, db_url=server.url(server.create_database()))
    settings.storage.connect_timeout_s = 2
    bound = settings.storage.connect_timeout_s + SLACK_S
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    with station(settings, detector) as api:
        acknowledged = acknowledge(api, range(2))
        os.kill(postmaster, signal.SIGSTOP)
        try:
            api.app.state.store.db.engine.dispose()  # the next request needs a new connection
            answers: list[tuple[httpx.Response, float]] = []
            asker = threading.Thread(target=lambda: answers.append(timed(api, 5)), daemon=True)
            asker.start()
            asker.join(bound + 30)
            assert answers, "the request hangs on a server that does not answer"
            assert_unavailable(*answers[0], bound, "storage_unavailable")
        finally:
            os.kill(postmaster, signal.SIGCONT)
        r = api.inspect([view(5)])
        assert r.status_code == 201, r.text
        assert_kept(api, {**acknowledged, r.json()["id"]: 5})
