"""A request cancelled while it claims its Idempotency-Key does not leave the key held.

The claim runs in a worker thread; cancelling the request abandons the wait, not the thread. A key
taken after the cancel would stay pending for the whole lease (``idempotency_wait_s``, 120 s by
default), and every retry with that key would wait for it.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from inspector.api.service import InspectionService
from inspector.config import ServerConfig, Settings, StorageConfig
from inspector.store import Store
from inspector.store import inspections as repo
from tests.builders import gated


@pytest.fixture
def service(tmp_path: Path) -> InspectionService:
    settings = Settings(storage=StorageConfig(data_dir=tmp_path), server=ServerConfig(idempotency_wait_s=60))
    store = Store(settings.storage).open()
    unused: Any = None  # the claim touches only the settings and the store
    return InspectionService(settings, store, unused, unused, unused, lambda: None)


def _claim_now(service: InspectionService, key: str) -> str:
    with service.store.db.write() as s:
        return repo.claim_key(s, key, "hash", lease=timedelta(seconds=60)).kind


def test_a_request_cancelled_while_it_claims_its_key_hands_the_key_back(
    service: InspectionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    claimed = threading.Event()
    real_claim = repo.claim_key
    # the request is cancelled before the key is taken
    monkeypatch.setattr(repo, "claim_key", gated(real_claim, gate, claimed))
    handed: list[bool] = []
    real_hand_back = getattr(service, "_hand_back", lambda *args: None)

    def spy_hand_back(*args: Any) -> None:
        real_hand_back(*args)
        handed.append(True)

    monkeypatch.setattr(service, "_hand_back", spy_hand_back, raising=False)

    async def scenario() -> None:
        request = asyncio.ensure_future(service._claim("key-1", "hash"))
        await asyncio.sleep(0.1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        gate.set()  # now the abandoned thread takes the key
        for _ in range(100):  # the claim commits, then the hand-back runs in a thread of its own
            if handed and not service._background:
                break
            await asyncio.sleep(0.05)

    asyncio.run(scenario())
    monkeypatch.setattr(repo, "claim_key", real_claim)
    assert claimed.is_set(), "the claim thread ran after the cancel"
    assert _claim_now(service, "key-1") == "new", "the key was handed back: a retry runs at once"


def test_a_claim_that_completes_keeps_its_key(service: InspectionService) -> None:
    stored, lease = asyncio.run(service._claim("key-2", "hash"))
    assert stored is None and lease is not None
    assert _claim_now(service, "key-2") == "busy", "the request that owns the key is still running"
