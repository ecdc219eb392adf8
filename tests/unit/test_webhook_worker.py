"""The webhook worker stopped mid-delivery hands its lease back, so the next start retries at once.

A lease runs for ``lease_s`` (60 s by default): a worker that stops while a request is in flight
and keeps the lease would make a restarted station wait that long before trying again.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from inspector.config import WebhookConfig
from inspector.store import delivery
from inspector.store.db import Database
from inspector.store.delivery import WebhookWorker
from inspector.store.models import DeliveryRow
from inspector.store.webhooks import add_endpoint, add_event, lease_due
from tests.builders import gated


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    with database.write() as s:
        add_endpoint(s, "http://127.0.0.1:9/hook", ["inspection.completed"])
        add_event(s, "inspection.completed", {"id": "insp_1"})
    return database


def _lease_of(db: Database) -> tuple[str, object, int]:
    with db.read() as s:
        row = s.query(DeliveryRow).one()
        return row.status, row.leased_until, row.attempts


def test_a_worker_stopped_mid_request_releases_its_lease(db: Database) -> None:
    async def scenario() -> None:
        entered = asyncio.Event()

        async def hang(request: httpx.Request) -> httpx.Response:
            entered.set()
            await asyncio.Event().wait()  # the receiver never answers
            raise AssertionError("unreachable")

        worker = WebhookWorker(db, WebhookConfig(poll_interval_s=0.05), transport=httpx.MockTransport(hang))
        async with worker.running():
            await asyncio.wait_for(entered.wait(), timeout=10)
            assert _lease_of(db)[1] is not None, "the delivery is leased while its request is in flight"

    asyncio.run(scenario())
    status, leased_until, attempts = _lease_of(db)
    assert (status, attempts) == ("pending", 0)
    assert leased_until is None, "the lease was handed back: the next start retries at once"


def test_a_delivered_event_keeps_no_lease(db: Database) -> None:
    async def scenario() -> None:
        done = asyncio.Event()
        worker = WebhookWorker(
            db,
            WebhookConfig(poll_interval_s=0.05),
            transport=httpx.MockTransport(lambda request: httpx.Response(204)),
            on_result=lambda outcome: done.set(),
        )
        async with worker.running():
            await asyncio.wait_for(done.wait(), timeout=10)

    asyncio.run(scenario())
    status, leased_until, attempts = _lease_of(db)
    assert (status, attempts, leased_until) == ("delivered", 1, None)


def test_a_worker_stopped_while_it_takes_a_lease_hands_that_lease_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling the worker abandons the wait, not the lease thread: the stop waits for it."""
    entered, gate, leased = threading.Event(), threading.Event(), threading.Event()
    # the stop arrives while the lease is being taken
    monkeypatch.setattr(delivery, "lease_due", gated(lease_due, gate, leased, entered))

    async def scenario() -> None:
        worker = WebhookWorker(
            db, WebhookConfig(poll_interval_s=0.05), transport=httpx.MockTransport(lambda r: httpx.Response(204))
        )
        async with worker.running():
            await asyncio.to_thread(entered.wait, 10)
            threading.Timer(0.3, gate.set).start()

    asyncio.run(scenario())
    assert leased.wait(10), "the lease thread finished"
    status, leased_until, attempts = _lease_of(db)
    assert (status, attempts) == ("pending", 0)
    assert leased_until is None, "a lease taken while the worker stopped is handed back"


def test_an_outage_is_logged_once_and_its_end_once(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A database down for many ticks gives one warning and one recovery line, not a traceback per tick."""
    calls = {"n": 0}
    real = WebhookWorker._lease

    def flaky(self: WebhookWorker, limit: int, busy: tuple[str, ...]) -> list[object]:
        calls["n"] += 1
        if calls["n"] <= 6:
            raise RuntimeError("server closed the connection unexpectedly")
        return real(self, limit, busy)  # type: ignore[return-value]

    monkeypatch.setattr(WebhookWorker, "_lease", flaky)

    async def scenario() -> None:
        worker = WebhookWorker(db, WebhookConfig(poll_interval_s=0.01))
        async with worker.running():
            for _ in range(500):
                if calls["n"] > 8:
                    break
                await asyncio.sleep(0.01)

    with caplog.at_level("WARNING", logger="inspector.webhooks"):
        asyncio.run(scenario())
    assert calls["n"] > 8
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "database" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "cannot reach the database" in lines[0] and "server closed" in lines[0]
    assert "again" in lines[1]
    assert not any(r.exc_info for r in caplog.records if r.levelname == "WARNING")


def test_a_failed_attempt_is_logged_without_the_urls_query(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    with database.write() as s:
        add_endpoint(s, "http://127.0.0.1:9/hook?token=s3cret", ["inspection.completed"])
        add_event(s, "inspection.completed", {"id": "insp_1"})

    async def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    async def scenario() -> None:
        worker = WebhookWorker(database, WebhookConfig(poll_interval_s=0.01), transport=httpx.MockTransport(refuse))
        async with worker.running():
            for _ in range(500):
                if any("attempt" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.01)

    with caplog.at_level("WARNING", logger="inspector.webhooks"):
        asyncio.run(scenario())
    shown = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert shown and "http://127.0.0.1:9/hook" in shown[0]
    assert "s3cret" not in "\n".join(r.getMessage() for r in caplog.records)
