"""A fleet on one store: 3 ``inspector serve`` processes, one PostgreSQL, one image folder, 12 clients.

For FLEET_SECONDS (60 by default) twelve client threads post inspections to the
three stations; a share of them are retried with the same Idempotency-Key on
another station, some at the same moment as the first attempt; a reader pages
through the list meanwhile; a webhook receiver on loopback fails some first
attempts. Afterwards: every acknowledged inspection is stored exactly once,
each key names one inspection, every event is delivered exactly once (by
webhook-id), each image is kept once, and the throughput is printed.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from inspector.detect.base import Detector
from inspector.store.db import Database
from inspector.store.keys import Role, create_key
from inspector.store.webhooks import verify
from tests.api.conftest import jpeg
from tests.pgserver import PostgresServer, free_port

pytestmark = [pytest.mark.api, pytest.mark.postgres]

SECONDS = float(os.environ.get("FLEET_SECONDS", "60"))
CLIENTS = 12
STATIONS = ("bench-1", "bench-2", "bench-3")


# ------------------------------------------------------------------ servers


@dataclass
class Station:
    """One ``inspector serve`` process of the fleet."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: bytearray = field(default_factory=bytearray)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.decode("utf-8", "replace")[-4000:]


def start_station(name: str, db_url: str, data_dir: Path, image_dir: Path, model: str) -> Station:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "INSPECTOR_STATION__ENABLED": "false",
            "INSPECTOR_SERVER__BOOTSTRAP_KEYS": "false",
            "INSPECTOR_SERVER__INFERENCE_QUEUE": "16",
            "INSPECTOR_DETECTOR__MODEL": model,
            "INSPECTOR_DETECTOR__THREADS": "1",
            "INSPECTOR_DETECTOR__IMGSZ": "320",
            "INSPECTOR_THREADS": "1",
            "INSPECTOR_WEBHOOKS__BASE_DELAY_S": "0.2",
            "INSPECTOR_WEBHOOKS__MAX_DELAY_S": "1",
            "INSPECTOR_WEBHOOKS__POLL_INTERVAL_S": "0.2",
            "INSPECTOR_WEBHOOKS__TIMEOUT_S": "5",
            "INSPECTOR_WEBHOOKS__ALLOW_PRIVATE_URLS": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    cmd = [
        sys.executable,
        "-c",
        "from inspector.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--db",
        db_url,
        "--station",
        name,
        "--image-dir",
        str(image_dir),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    station = Station(name, port, proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            station.log.extend(line)

    threading.Thread(target=read, daemon=True).start()
    return station


def wait_ready(station: Station, key: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if station.proc.poll() is not None:
            raise AssertionError(f"{station.name} exited with {station.proc.returncode}:\n{station.text()}")
        try:
            r = httpx.get(f"{station.url}/v1/ready", headers={"X-API-Key": key}, timeout=5)
            if r.status_code == 200 and r.json()["ready"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{station.name} was not ready within {timeout} s:\n{station.text()}")


def stop_station(station: Station) -> None:
    if station.proc.poll() is None:
        station.proc.send_signal(signal.SIGTERM)
        try:
            station.proc.wait(30)
        except subprocess.TimeoutExpired:
            station.proc.kill()
            station.proc.wait(10)


# ----------------------------------------------------------------- receiver


class Receiver:
    """Records every delivery; answers 503 to the first attempt of one event in eight (by arrival)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.bodies: dict[str, tuple[dict[str, str], bytes]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                msg_id = self.headers.get("webhook-id", "")
                with outer.lock:
                    new = msg_id not in outer.failed and msg_id not in outer.ok
                    fail = new and (len(outer.ok) + len(outer.failed)) % 8 == 0
                    if fail:
                        outer.failed[msg_id] += 1
                    else:
                        outer.ok[msg_id] += 1
                        outer.bodies[msg_id] = ({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(503 if fail else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -------------------------------------------------------------------- test


@dataclass
class Outcome:
    key: str
    station: str
    status: int
    inspection_id: str | None
    replayed: bool
    seconds: float


@pytest.fixture
def fleet_db(postgres: PostgresServer) -> Iterator[str]:
    """An empty database: the stations migrate it themselves, all starting at once."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


def test_three_stations_one_postgresql_twelve_clients(
    tmp_path: Path, fleet_db: str, detector: Detector, capsys: pytest.CaptureFixture[str]
) -> None:
    image_dir = tmp_path / "shared-images"
    model = str(detector.weights)  # type: ignore[attr-defined]
    t_start = time.monotonic()
    stations = [start_station(n, fleet_db, tmp_path / n, image_dir, model) for n in STATIONS]
    receiver = Receiver()
    db: Database | None = None
    try:
        db = Database(fleet_db)
        deadline = time.monotonic() + 180
        while db.current_revision() is None:  # the first station to start has migrated
            assert time.monotonic() < deadline, "\n".join(s.text() for s in stations)
            time.sleep(0.3)
        db.migrate()  # waits for a migration in progress (advisory lock), then finds nothing to do
        with db.write() as s:
            _, admin = create_key(s, Role.ADMIN, "fleet admin")
            _, wms = create_key(s, Role.WMS, "fleet wms")
        for st in stations:
            wait_ready(st, wms)
        started_s = time.monotonic() - t_start
        hook = httpx.post(
            f"{stations[0].url}/v1/webhooks",
            headers={"X-API-Key": admin},
            json={"url": receiver.url, "events": ["inspection.completed"]},
            timeout=30,
        )
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]

        outcomes, paging = run_load(stations, wms)
        t_drain = time.monotonic()
        drain(db, receiver)
        timings = {"start": started_s, "drain": time.monotonic() - t_drain}
        check(db, stations, wms, secret, receiver, outcomes, paging, image_dir, timings, capsys)
    finally:
        for st in stations:
            stop_station(st)
        receiver.close()
        if db is not None:
            db.dispose()


def run_load(stations: list[Station], key: str) -> tuple[list[Outcome], dict[str, Any]]:
    """Twelve clients for SECONDS; about one request in four is retried on another station."""
    pictures = [jpeg(seed=1000 + i) for i in range(40)]  # repeated pictures: content-addressed, kept once
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    transport_retries = [0]
    lock = threading.Lock()

    def guarded(fn: Any, *args: Any) -> threading.Thread:
        """A thread whose exception fails the test instead of vanishing with the thread."""

        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        return threading.Thread(target=run)

    def post(client: httpx.Client, st: Station, idem: str, image: bytes, item: dict[str, Any]) -> Outcome:
        """POST until a final answer, as a WMS does: 503 or a dropped connection means the same request again."""
        t0 = time.perf_counter()
        for _ in range(50):
            try:
                r = client.post(
                    f"{st.url}/v1/inspections",
                    headers={"X-API-Key": key, "Idempotency-Key": idem},
                    files=[("images", ("view.jpg", image, "image/jpeg"))],
                    data={"item": json.dumps(item)},
                )
            except httpx.TransportError:  # e.g. a keep-alive connection the server closed as it was reused
                with lock:
                    transport_retries[0] += 1
                time.sleep(0.1)
                continue
            if r.status_code != 503:
                break
            time.sleep(0.2)
        ok = r.status_code == 201
        return Outcome(
            idem,
            st.name,
            r.status_code,
            r.json()["id"] if ok else None,
            r.headers.get("idempotent-replayed") == "true",
            time.perf_counter() - t0,
        )

    def client_loop(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(timeout=120) as client, httpx.Client(timeout=120) as second:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                idem = f"c{n}-{i}"
                first, other = rng.sample(stations, 2)
                image = pictures[rng.randrange(len(pictures))]
                item = {"rma": f"RMA-{n}-{i}", "sku": "PH-M250"}
                roll = rng.random()
                got: list[Outcome] = []
                if roll < 0.12:  # the retry races the first attempt, on another station
                    t = guarded(lambda: got.append(post(second, other, idem, image, item)))
                    t.start()
                    got.append(post(client, first, idem, image, item))
                    t.join()
                else:
                    got.append(post(client, first, idem, image, item))
                    if roll < 0.25:  # a retry after the answer was lost, on another station
                        got.append(post(client, other, idem, image, item))
                with lock:
                    outcomes.extend(got)

    # One inspection per station first, so that model warm-up is not counted in the throughput.
    def warm(st: Station) -> None:
        with httpx.Client(timeout=300) as client:
            got = post(client, st, f"warm-{st.name}", pictures[0], {"rma": f"RMA-warm-{st.name}"})
        with lock:
            outcomes.append(got)

    warmers = [guarded(warm, st) for st in stations]
    for t in warmers:
        t.start()
    for t in warmers:
        t.join(300)
    stop_at = time.monotonic() + SECONDS
    paging: dict[str, Any] = {}

    def reader() -> None:
        """Pages newest first across the stations while they insert: no item twice, nothing older skipped."""
        time.sleep(SECONDS / 3)
        with lock:
            before = {o.inspection_id for o in outcomes if o.inspection_id}
        seen: list[str] = []
        cursor = None
        with httpx.Client(timeout=60) as client:
            for page_no in range(10_000):
                st = stations[page_no % len(stations)]
                params: dict[str, Any] = {"limit": 25}
                if cursor:
                    params["cursor"] = cursor
                for _ in range(20):  # a GET is safe to send again over a new connection
                    try:
                        r = client.get(f"{st.url}/v1/inspections", headers={"X-API-Key": key}, params=params)
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                assert r.status_code == 200, r.text
                page = r.json()
                seen += [b["id"] for b in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
                time.sleep(0.05)
        paging.update(before=before, seen=seen)

    threads = [guarded(client_loop, n) for n in range(CLIENTS)]
    threads.append(guarded(reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 300)
    assert errors == [], errors
    assert not any(t.is_alive() for t in threads), "every client finished"
    paging["transport_retries"] = transport_retries[0]
    return outcomes, paging


def drain(db: Database, receiver: Receiver, timeout: float = 60.0) -> None:
    """Wait until the outbox has nothing left to deliver."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as s:
            pending = s.execute(text("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")).scalar()
        if pending == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"{pending} deliveries still pending after {timeout} s")


def check(
    db: Database,
    stations: list[Station],
    key: str,
    secret: str,
    receiver: Receiver,
    outcomes: list[Outcome],
    paging: dict[str, Any],
    image_dir: Path,
    timings: dict[str, float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert outcomes, "the clients made requests"
    statuses = collections.Counter(o.status for o in outcomes)
    assert set(statuses) == {201}, f"every request ends in 201 (busy stations retried): {statuses}"

    # Each Idempotency-Key names one inspection, whichever station answered, first or replayed.
    by_key: dict[str, set[str]] = collections.defaultdict(set)
    for o in outcomes:
        assert o.inspection_id is not None
        by_key[o.key].add(o.inspection_id)
    assert all(len(ids) == 1 for ids in by_key.values()), [k for k, v in by_key.items() if len(v) > 1]
    acked = {next(iter(ids)) for ids in by_key.values()}
    assert len(acked) == len(by_key)
    retried = sum(1 for k in by_key if sum(o.key == k for o in outcomes) > 1)
    assert retried > 0 and any(o.replayed for o in outcomes)

    with db.read() as s:
        rows = s.execute(text("SELECT id, station_id FROM inspections")).all()
        done = s.execute(text("SELECT key, inspection_id FROM idempotency_keys WHERE status = 'done'")).all()
        keys = {k.split(":", 1)[1]: iid for k, iid in done}  # stored per API key: "<key id>:<client key>"
        deliveries = collections.Counter(
            dict(s.execute(text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")).all())
        )
        digests = set(s.execute(text("SELECT DISTINCT sha256 FROM inspection_images")).scalars())
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored)), "no inspection stored twice"
    assert set(stored) == acked, "every acknowledged inspection is stored, and nothing else"
    assert {k: keys[k] for k in by_key} == {k: next(iter(v)) for k, v in by_key.items()}
    per_station = collections.Counter(r[1] for r in rows)
    assert set(per_station) == set(STATIONS), per_station

    # Webhooks: one event per inspection, each delivered exactly once (a 2xx), retried ones included.
    assert deliveries == {"delivered": len(stored)}, deliveries
    assert sum(receiver.ok.values()) == len(stored) and set(receiver.ok.values()) == {1}, "no event twice"
    assert receiver.failed and set(receiver.failed) <= set(receiver.ok), "failed first attempts were retried"
    delivered_ids = set()
    for headers, body in receiver.bodies.values():
        assert verify(secret, headers, body, tolerance_s=3600)
        delivered_ids.add(json.loads(body)["data"]["id"])
    assert delivered_ids == set(stored)

    # Paging across stations during the load: nothing twice, nothing that existed before the walk skipped.
    seen = paging["seen"]
    assert len(seen) == len(set(seen)) and paging["before"] <= set(seen)

    # One shared image folder: each distinct picture once (beside it, the anomaly model's heat maps of it).
    files = {p.name for p in image_dir.rglob("*") if p.is_file()}
    heat_maps = {f for f in files if ".anomaly-" in f}
    assert files - heat_maps == digests
    assert {f.split(".anomaly-")[0] for f in heat_maps} <= digests

    # /metrics of each station counts that station's inspections.
    for st in stations:
        metrics = httpx.get(f"{st.url}/metrics", headers={"X-API-Key": key}, timeout=30).text
        counted = [ln for ln in metrics.splitlines() if ln.startswith("inspector_inspections_total{")]
        assert all(f'station="{st.name}"' in ln for ln in counted)
        assert sum(float(ln.rsplit(" ", 1)[1]) for ln in counted) == per_station[st.name]

    first = [o.seconds for o in outcomes if not o.replayed and not o.key.startswith("warm-")]
    made = len(stored) - len(stations)  # the warm-up inspections are checked like the others, not counted
    q = statistics.quantiles(first, n=20)
    with capsys.disabled():
        print(
            f"\nfleet: {len(STATIONS)} stations on one PostgreSQL, {CLIENTS} clients, {SECONDS:.0f} s: "
            f"{made} inspections ({made / SECONDS:.2f}/s; "
            + ", ".join(f"{n} {per_station[n] - 1}" for n in STATIONS)
            + f"), {len(outcomes)} requests, {retried} keys retried, "
            f"{sum(o.replayed for o in outcomes)} replays, {len(acked - set(stored))} lost, "
            f"{len(stored) - len(set(stored))} duplicated; "
            f"latency p50 {statistics.median(first) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms; "
            f"{len(receiver.ok)} webhooks delivered once each ({sum(receiver.failed.values())} retried after 503); "
            f"{len(files)} image files; {paging['transport_retries']} requests resent after a dropped connection; "
            f"stations ready in {timings['start']:.0f} s, outbox drained in "
            f"{timings['drain']:.1f} s after the load"
        )
