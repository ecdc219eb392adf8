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

from inspector.api.idempotency import IdempotencyKeys
from inspector.config import StorageConfig
from inspector.errors import Conflict
from inspector.store import Store
from inspector.store import inspections as repo
from tests.builders import gated


@pytest.fixture
def keys(tmp_path: Path) -> IdempotencyKeys:
    return IdempotencyKeys(Store(StorageConfig(data_dir=tmp_path)).open(), wait_s=60)


def _claim_now(keys: IdempotencyKeys, key: str) -> str:
    with keys.store.db.write() as s:
        return repo.claim_key(s, key, "hash", lease=timedelta(seconds=60)).kind


def test_a_request_cancelled_while_it_claims_its_key_hands_the_key_back(
    keys: IdempotencyKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    claimed = threading.Event()
    real_claim = repo.claim_key
    # the request is cancelled before the key is taken
    monkeypatch.setattr(repo, "claim_key", gated(real_claim, gate, claimed))
    handed: list[bool] = []
    real_hand_back = keys._hand_back

    def spy_hand_back(*args: Any) -> None:
        real_hand_back(*args)
        handed.append(True)

    monkeypatch.setattr(keys, "_hand_back", spy_hand_back)

    async def scenario() -> None:
        request = asyncio.ensure_future(keys.claim("key-1", "hash"))
        await asyncio.sleep(0.1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        gate.set()  # now the abandoned thread takes the key
        for _ in range(100):  # the claim commits, then the hand-back runs in a thread of its own
            if handed and not keys._background:
                break
            await asyncio.sleep(0.05)

    asyncio.run(scenario())
    monkeypatch.setattr(repo, "claim_key", real_claim)
    assert claimed.is_set(), "the claim thread ran after the cancel"
    assert handed, "the cancelled claim was handed back"
    assert _claim_now(keys, "key-1") == "new", "the key was handed back: a retry runs at once"


def test_a_claim_that_completes_keeps_its_key(keys: IdempotencyKeys) -> None:
    stored, lease = asyncio.run(keys.claim("key-2", "hash"))
    assert stored is None and lease is not None
    assert _claim_now(keys, "key-2") == "busy", "the request that owns the key is still running"


def test_a_failed_run_releases_its_key_and_another_body_is_refused(keys: IdempotencyKeys) -> None:
    async def fail(lease: Any) -> str:
        raise RuntimeError("the model crashed")

    async def succeed(lease: Any) -> str:
        return "ran"

    with pytest.raises(RuntimeError):
        asyncio.run(keys.once("key-3", "hash", fail, lambda body: "replayed"))
    assert asyncio.run(keys.once("key-3", "hash", succeed, lambda body: "replayed")) == "ran"
    with pytest.raises(Conflict) as err:
        asyncio.run(keys.once("key-3", "other-hash", succeed, lambda body: "replayed"))
    assert err.value.code == "idempotency_key_reused"
