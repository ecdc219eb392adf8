"""Webhook receivers that misbehave, on real sockets: they hang, trickle, redirect, answer 410 or die.

Each receiver is a real TCP server on loopback; the worker is the station's own, on a
SQLite outbox under tmp_path. What is asserted is what an admin reads back (status,
last error, the endpoint disabled and why), that no event is lost, and that one bad
receiver neither holds the worker nor delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inspector.config import WebhookConfig
from inspector.store.db import Database
from inspector.store.delivery import WebhookWorker
from inspector.store.models import DeliveryRow, WebhookEndpointRow
from inspector.store.webhooks import add_endpoint, add_event, check_destination
from inspector.types import utcnow

OK = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


# ------------------------------------------------------------------ receivers


@dataclass
class RawReceiver:
    """A loopback TCP server; ``answer(conn)`` plays the receiver once the request has arrived."""

    answer: Callable[[socket.socket], None]
    requests: list[bytes] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            with self.arrived:
                self.requests.append(body)
                self.arrived.notify_all()
            with contextlib.suppress(OSError):  # the worker hung up: the point of several receivers here
                self.answer(conn)

    def wait_for(self, n: int, timeout: float) -> list[bytes]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(f"expected {n} requests within {timeout} s, got {len(self.requests)}")
            return list(self.requests)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def answers(raw: bytes) -> Callable[[socket.socket], None]:
    return lambda conn: conn.sendall(raw)


def hangs(conn: socket.socket) -> None:
    """Accepts, reads the request, never answers (until the worker hangs up)."""
    conn.settimeout(None)
    while conn.recv(1):
        pass


def trickles(conn: socket.socket) -> None:
    """A valid answer, one byte every 0.2 s: each read is quick, the whole never ends in time."""
    for b in b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100000:
        conn.sendall(bytes([b]))
        time.sleep(0.2)


@pytest.fixture
def receivers() -> Iterator[Callable[[Callable[[socket.socket], None]], RawReceiver]]:
    made: list[RawReceiver] = []

    def make(answer: Callable[[socket.socket], None]) -> RawReceiver:
        made.append(RawReceiver(answer))
        return made[-1]

    yield make
    for r in made:
        r.close()


# --------------------------------------------------------------------- worker


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    return database


def cfg(**kw: Any) -> WebhookConfig:
    base = {"base_delay_s": 0.05, "max_delay_s": 0.2, "poll_interval_s": 0.05, "timeout_s": 2.0}
    return WebhookConfig(**{**base, "allow_private_urls": True, **kw})


def endpoint(db: Database, url: str, events: tuple[str, ...] = ("inspection.completed",)) -> str:
    with db.write() as s:
        return add_endpoint(s, url, list(events))[0].id


def event(db: Database, n: int, now: datetime | None = None) -> None:
    with db.write() as s:
        add_event(s, "inspection.completed", {"id": f"insp_{n}"}, now=now)


def delivery(db: Database, endpoint_id: str) -> DeliveryRow:
    with db.read() as s:
        rows = s.query(DeliveryRow).filter_by(endpoint_id=endpoint_id).order_by(DeliveryRow.id).all()
        s.expunge_all()
    return rows[0]


def endpoint_row(db: Database, endpoint_id: str) -> WebhookEndpointRow:
    with db.read() as s:
        row = s.get(WebhookEndpointRow, endpoint_id)
        assert row is not None
        s.expunge(row)
    return row


def until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - t0


def run_worker(worker: WebhookWorker, body: Callable[[], Awaitable[None]]) -> float:
    """Run ``body`` with the worker started; returns how long the worker took to stop."""

    async def scenario() -> float:
        async with worker.running():
            await body()
            t0 = time.monotonic()
        return time.monotonic() - t0

    return asyncio.run(scenario())


# ---------------------------------------------------------------------- tests


def test_a_hung_receiver_neither_delays_a_healthy_one_nor_holds_the_stop(db: Database, receivers: Any) -> None:
    hung, healthy = receivers(hangs), receivers(answers(OK))
    hung_id, healthy_id = endpoint(db, hung.url), endpoint(db, healthy.url)
    worker = WebhookWorker(db, cfg(timeout_s=60.0))

    async def body() -> None:
        event(db, 1)
        await asyncio.to_thread(hung.wait_for, 1, 10)
        await asyncio.to_thread(healthy.wait_for, 1, 10)
        event(db, 2)  # while the hung receiver holds its attempt
        t0 = time.monotonic()
        await asyncio.to_thread(healthy.wait_for, 2, 10)
        assert time.monotonic() - t0 < 2.0, "the healthy receiver got the next event at once"

    stop_s = run_worker(worker, body)
    assert stop_s < 2.0, f"the stop waited {stop_s:.1f} s for a hung attempt"
    hung_row = delivery(db, hung_id)
    assert (hung_row.status, hung_row.attempts, hung_row.leased_until) == ("pending", 0, None), (
        "the hung attempt was handed back, not lost"
    )
    assert delivery(db, healthy_id).status == "delivered"


def test_a_trickling_answer_is_cut_at_the_total_deadline(db: Database, receivers: Any) -> None:
    slow = receivers(trickles)
    slow_id = endpoint(db, slow.url)
    worker = WebhookWorker(db, cfg(timeout_s=1.0))

    async def body() -> None:
        event(db, 1)
        waited = await asyncio.to_thread(until, lambda: delivery(db, slow_id).attempts >= 1, 10)
        assert waited < 3.0, f"an attempt lasted {waited:.1f} s past a 1 s deadline"

    run_worker(worker, body)
    row = delivery(db, slow_id)
    assert row.status == "pending" and row.last_status is None
    assert row.last_error == "no complete answer within 1 s (webhooks.timeout_s)"


REFUSALS = [
    # (case, the receiver's answer, last_status, words of last_error, endpoint disabled)
    (
        "redirect",
        b"HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n",
        302,
        ["{target}", "not followed"],
        False,
    ),
    (
        "moved",
        b"HTTP/1.1 308 Permanent Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n",
        308,
        ["{target}"],
        False,
    ),
    ("gone", b"HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n", 410, ["410 Gone", "unsubscribed"], True),
    ("error", b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", 503, ["HTTP 503"], False),
]


@pytest.mark.parametrize(("case", "raw", "status", "words", "disabled"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_redirects_are_not_followed_and_410_unsubscribes(
    db: Database, receivers: Any, case: str, raw: bytes, status: int, words: list[str], disabled: bool
) -> None:
    target, watcher = receivers(answers(OK)), receivers(answers(OK))
    bad = receivers(answers(raw.replace(b"{target}", target.url.encode())))
    bad_id = endpoint(db, bad.url)
    endpoint(db, watcher.url, ("webhook.disabled",))
    worker = WebhookWorker(db, cfg())

    async def body() -> None:
        event(db, 1)
        await asyncio.to_thread(until, lambda: delivery(db, bad_id).attempts >= 1, 10)
        if disabled:
            await asyncio.to_thread(watcher.wait_for, 1, 10)

    run_worker(worker, body)
    row, ep = delivery(db, bad_id), endpoint_row(db, bad_id)
    assert row.last_status == status and row.status == "pending"
    assert row.last_error is not None
    for word in words:
        assert word.replace("{target}", target.url) in row.last_error
    assert target.requests == [], "a redirect is never followed"
    assert (ep.disabled_at is not None) == disabled
    if disabled:
        assert ep.disabled_reason is not None and "410" in ep.disabled_reason
        (note,) = [json.loads(b) for b in watcher.requests]
        assert note["type"] == "webhook.disabled" and note["data"]["endpoint_id"] == bad_id
    else:
        assert ep.failing_since is not None and watcher.requests == []


def test_a_receiver_dead_for_the_stated_days_is_disabled_and_the_others_are_told(db: Database, receivers: Any) -> None:
    dead = receivers(answers(OK))
    dead.close()  # nothing listens on its port: every attempt is refused
    watcher = receivers(answers(OK))
    dead_id = endpoint(db, dead.url)
    endpoint(db, watcher.url, ("webhook.disabled",))
    t0 = utcnow()
    now = [t0]
    worker = WebhookWorker(db, cfg(disable_after_days=3, max_attempts=100), clock=lambda: now[0])

    def attempts() -> int:
        return delivery(db, dead_id).attempts

    async def after(days: float, n: int) -> WebhookEndpointRow:
        now[0] = t0 + timedelta(days=days, seconds=1)
        await asyncio.to_thread(until, lambda: attempts() >= n, 10)
        return endpoint_row(db, dead_id)

    async def body() -> None:
        event(db, 1, now=t0)
        first = await after(0, 1)
        assert (first.failing_since, first.disabled_at) == (t0 + timedelta(seconds=1), None)
        second = await after(2.9, 2)
        assert second.disabled_at is None, "not yet: failing for less than 3 days"
        assert second.failing_since == first.failing_since, "failing since the first failure"
        third = await after(3, 3)
        assert third.disabled_at == now[0] and third.disabled_reason is not None
        assert "3 days" in third.disabled_reason and "ConnectError" in third.disabled_reason
        await asyncio.to_thread(watcher.wait_for, 1, 10)
        await asyncio.sleep(0.3)
        assert attempts() == 3, "a disabled endpoint gets no more attempts"

    run_worker(worker, body)
    (note,) = [json.loads(b) for b in watcher.requests]
    assert note["type"] == "webhook.disabled"
    assert note["data"]["endpoint_id"] == dead_id and note["data"]["failing_since"].startswith(t0.date().isoformat())
    assert delivery(db, dead_id).status == "pending", "kept: re-enabling the endpoint delivers it"


def test_a_success_clears_failing_since(db: Database, receivers: Any) -> None:
    flaky = receivers(answers(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n"))
    flaky_id = endpoint(db, flaky.url)
    worker = WebhookWorker(db, cfg())

    async def body() -> None:
        event(db, 1)
        await asyncio.to_thread(until, lambda: endpoint_row(db, flaky_id).failing_since is not None, 10)
        flaky.answer = answers(OK)
        await asyncio.to_thread(until, lambda: delivery(db, flaky_id).status == "delivered", 10)

    run_worker(worker, body)
    assert endpoint_row(db, flaky_id).failing_since is None


# ----------------------------------------------------------- private receivers


def test_a_name_that_now_resolves_to_loopback_is_refused_at_delivery(db: Database, receivers: Any) -> None:
    """DNS changed after registration: the address is checked before connecting, and nothing is sent."""
    local = receivers(answers(OK))
    port = local.url.split(":")[2].split("/")[0]
    hook_id = endpoint(db, f"http://wms.example:{port}/hook")
    worker = WebhookWorker(db, cfg(allow_private_urls=False), resolve=lambda host, port: ["127.0.0.1"])

    async def body() -> None:
        event(db, 1)
        await asyncio.to_thread(until, lambda: delivery(db, hook_id).attempts >= 1, 10)

    run_worker(worker, body)
    row = delivery(db, hook_id)
    assert row.status == "pending" and local.requests == []
    assert row.last_error is not None
    assert "refused: wms.example resolves to a loopback address (127.0.0.1)" in row.last_error


DESTINATIONS = [
    # (url, what the resolver answers for a name, refused as)
    ("http://127.0.0.1:9000/hook", None, "loopback"),
    ("http://localhost:9000/hook", None, "loopback"),
    ("http://[::1]/hook", None, "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", None, "loopback"),
    ("http://169.254.169.254/latest/meta-data", None, "link-local"),
    ("http://[fe80::1]/hook", None, "link-local"),
    ("http://10.1.2.3/hook", None, "private"),
    ("http://172.16.9.9/hook", None, "private"),
    ("http://192.168.1.20/hook", None, "private"),
    ("http://[fd00::7]/hook", None, "private"),
    ("http://0.0.0.0:8080/hook", None, "unspecified"),
    ("http://224.0.0.251/hook", None, "multicast"),
    ("https://wms.example.com/hook", ["10.20.30.40"], "private"),
    ("https://wms.example.com/hook", ["93.184.216.34", "169.254.1.1"], "link-local"),
    ("https://wms.example.com/hook", ["93.184.216.34", "2606:2800:220:1::1"], None),
]


@pytest.mark.parametrize(("url", "resolved", "refused"), DESTINATIONS)
def test_receivers_on_the_stations_own_networks_are_refused(
    url: str, resolved: list[str] | None, refused: str | None
) -> None:
    from inspector.store.webhooks import resolve_host

    def resolve(host: str, port: int) -> list[str]:
        return resolved if resolved is not None else resolve_host(host, port)

    if refused is None:
        check_destination(url, resolve=resolve)
        return
    with pytest.raises(ValueError, match=f"a webhook URL on a {refused} address"):
        check_destination(url, resolve=resolve)
