"""Idempotency-Key: a request and its retries make one inspection, on whichever server they land.

A key is claimed in the database before the work runs; a retry of the same request
waits for the first and gets its stored response; another request with the same key
is refused. Races between processes are settled by the database (a unique key, and
a lease that fences a request whose key was taken over).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
from sqlalchemy.exc import IntegrityError

from inspector.api.schemas import as_served
from inspector.errors import Broken, Conflict
from inspector.store import Store
from inspector.store import inspections as repo
from inspector.store.db import busy_means_retry

T = TypeVar("T")

# How often a request whose key was taken over mid-way asks again before it gives up.
_TAKE_OVERS = 3
_KEY_COLUMN = 255  # idempotency_keys.key


def request_hash(image_digests: Sequence[str], item: dict[str, Any]) -> str:
    """What makes two requests "the same" for idempotency: the image bytes and the item, in order."""
    canon = json.dumps({"images": list(image_digests), "item": item}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def scoped_key(key_id: str, client_key: str) -> str:
    """The stored form of a client's Idempotency-Key, scoped to the API key that sent it.

    Keys are often predictable (an RMA number): unscoped, one client could claim another's
    key first and block it, or be served its inspection. Hashed when it would not fit the column.
    """
    scoped = f"{key_id}:{client_key}"
    if len(scoped) <= _KEY_COLUMN:
        return scoped
    return f"{key_id}:sha256:{hashlib.sha256(client_key.encode('utf-8')).hexdigest()}"


def _in_use() -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still being processed", code="idempotency_key_in_use", retry_after=2
    )


class IdempotencyKeys:
    """Claims, waits for, replays and hands back idempotency keys in the store."""

    def __init__(self, store: Store, wait_s: float) -> None:
        self.store = store
        self.wait_s = wait_s
        self._background: set[asyncio.Future[None]] = set()  # key releases of cancelled requests

    async def once(
        self,
        key: str,
        req_hash: str,
        run: Callable[[datetime | None], Awaitable[T]],
        replay: Callable[[dict[str, Any]], T],
    ) -> T:
        """``run(lease)`` once for this key and request; a repeat gets ``replay(the stored body as served)``.

        A lease that ran out mid-way gave the key to a retry, so this request then answers as that retry does.
        """
        for _ in range(_TAKE_OVERS):
            stored, lease = await self.claim(key, req_hash)
            if stored is not None:
                return replay(stored)
            try:
                return await run(lease)
            except repo.KeyLost:
                continue
            except BaseException:
                await anyio.to_thread.run_sync(self.release, key, req_hash, lease)
                raise
        raise _in_use()

    def release(self, key: str, req_hash: str, lease: datetime | None) -> None:
        with self.store.db.write() as s:
            repo.release_key(s, key, req_hash, lease)

    async def claim(self, key: str, req_hash: str) -> tuple[dict[str, Any] | None, datetime | None]:
        """Own the key (``(None, lease)``) or return the stored body; waits while a first request runs.

        The loser of two inserts of the same key gets IntegrityError and looks again.
        """
        lease = timedelta(seconds=self.wait_s)
        deadline = time.monotonic() + self.wait_s
        delay = 0.02

        def attempt() -> repo.Claim:
            with self.store.db.write() as s:
                return repo.claim_key(s, key, req_hash, lease=lease)

        while True:
            taken: asyncio.Future[repo.Claim] = asyncio.ensure_future(anyio.to_thread.run_sync(attempt))
            try:
                with busy_means_retry():
                    claim = await asyncio.shield(taken)
            except asyncio.CancelledError:
                # Cancelling abandons the wait, not the thread: a key it takes after this would
                # be held for the whole lease, and every retry would wait that long.
                taken.add_done_callback(functools.partial(self._hand_back, key, req_hash))
                raise
            except IntegrityError:  # another server inserted the same key first: look again
                claim = repo.Claim("busy")
            if claim.kind == "new":
                return None, claim.lease
            if claim.kind == "conflict":
                raise Conflict(
                    "this Idempotency-Key was already used with a different request body",
                    code="idempotency_key_reused",
                )
            if claim.kind == "replay":
                assert claim.inspection_id is not None
                body = await anyio.to_thread.run_sync(self._stored_body, claim.inspection_id)
                if body is None:
                    raise Broken("the stored response of this Idempotency-Key is missing")
                return as_served(repo.compose(body, [])), None
            if time.monotonic() > deadline:
                raise _in_use()
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 1.6)

    def _hand_back(self, key: str, req_hash: str, taken: asyncio.Future[repo.Claim]) -> None:
        """Release a key that a claim took after its request was cancelled."""
        if taken.cancelled() or taken.exception() is not None or taken.result().kind != "new":
            return
        release = asyncio.ensure_future(anyio.to_thread.run_sync(self.release, key, req_hash, taken.result().lease))
        self._background.add(release)
        release.add_done_callback(self._background.discard)
        release.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _stored_body(self, inspection_id: str) -> dict[str, Any] | None:
        with self.store.db.read() as s:
            return repo.inspection_body(s, inspection_id)
