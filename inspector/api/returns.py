"""The expected returns of a station: stored from the WMS's pushes, asked of it when unknown, used to fill items.

:class:`ReturnBook` is the one place the routes, the inspection service and the
command line go through, so an item is filled the same way whether it came from
the bench camera or a WMS upload. ``clock`` is the station's "now" for expiry
(tests move it). Expired lines are deleted by :func:`purge_factory`'s background
task, at start and every hour; lookups ignore them from the moment they expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
from fastapi import FastAPI

from inspector.api.wms_lookup import WmsLookup
from inspector.config import ReturnsConfig
from inspector.errors import InvalidInput
from inspector.items import ItemInfo
from inspector.store import Store
from inspector.store import returns as repo
from inspector.store.returns import Entry, Match, Outcome, ReturnLine, Source
from inspector.types import utcnow

log = logging.getLogger("inspector.api")

PUSH_BATCH = 500  # lines written per transaction, so a big push never holds the write lock for long
PURGE_EVERY_S = 3600.0


class ReturnBook:
    """Store, read, forget and match expected returns; one per app (``app.state.inspections.returns``)."""

    def __init__(self, cfg: ReturnsConfig, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.wms = WmsLookup(self.cfg)

    # ------------------------------------------------------------- writing

    def push(self, entries: Sequence[Entry], *, source: Source = "api") -> list[Outcome]:
        """Upsert lines by RMA + line (the bulk route, the CSV import); the outcome of each, in order."""
        out: list[Outcome] = []
        for i in range(0, len(entries), PUSH_BATCH):
            with self.store.db.write() as s:
                self.store.db.lock(s, repo.LOCK)
                out += repo.upsert(
                    s, entries[i : i + PUSH_BATCH], source=source, now=self.clock(), expire_days=self.cfg.expire_days
                )
        return out

    def put(
        self, rma: str, lines: Sequence[ReturnLine], *, expires_at: datetime | None = None, source: Source = "api"
    ) -> tuple[bool, dict[str, Any]]:
        """Make ``lines`` the lines of ``rma`` (a line without a number is its place, from 1).

        Returns whether the RMA was known (live) before, and the return as stored.
        """
        repo.check_rma(rma)
        entries = _numbered(rma, lines, self.future(expires_at))
        with self.store.db.write() as s:
            self.store.db.lock(s, repo.LOCK)
            now = self.clock()
            known, _ = repo.replace(s, rma, entries, source=source, now=now, expire_days=self.cfg.expire_days)
            stored = repo.describe(rma, repo.live_lines(s, rma, now), repo.inspections_of(s, rma))
        return known, stored

    def future(self, expires_at: datetime | None) -> datetime | None:
        """``expires_at`` in UTC; :class:`InvalidInput` when it has passed (the return would be forgotten at once)."""
        if expires_at is None:
            return None
        when = repo.as_utc(expires_at)
        if when <= self.clock():
            raise InvalidInput(f"expires_at {when.isoformat()} has passed", code="expires_in_past")
        return when

    def forget(self, rma: str) -> bool:
        """Delete every line of ``rma``; whether it was a live return."""
        repo.check_rma(rma)
        with self.store.db.write() as s:
            self.store.db.lock(s, repo.LOCK)
            return repo.forget(s, rma, self.clock())

    def purge(self) -> int:
        """Delete the expired lines; how many went."""
        with self.store.db.write() as s:
            self.store.db.lock(s, repo.LOCK)
            return repo.purge_expired(s, self.clock())

    # ------------------------------------------------------------- reading

    def get(self, rma: str, *, lookup: bool = False) -> tuple[dict[str, Any] | None, str | None]:
        """The live return ``rma`` (asked of the WMS first when unknown and ``lookup``), and why the WMS failed."""
        repo.check_rma(rma)
        found = self._describe(rma)
        if found is not None or not lookup:
            return found, None
        answer = self.wms.ask(rma, None)
        if answer is None or answer.status == "missing":
            return None, None
        if answer.status == "failed":
            return None, answer.message
        self._keep(answer.rma or rma, answer.entries)
        return self._describe(answer.rma or rma), None

    def by_lpn(self, lpn: str) -> dict[str, Any] | None:
        """The live line that carries ``lpn``, with its RMA."""
        with self.store.db.read() as s:
            found = repo.line_by_lpn(s, lpn, self.clock())
        return found.to_dict() if found is not None else None

    def _describe(self, rma: str) -> dict[str, Any] | None:
        with self.store.db.read() as s:
            lines = repo.live_lines(s, rma, self.clock())
            return repo.describe(rma, lines, repo.inspections_of(s, rma)) if lines else None

    def _keep(self, rma: str, entries: Sequence[Entry]) -> None:
        """Store what the WMS answered, as the lines of its RMA."""
        with self.store.db.write() as s:
            self.store.db.lock(s, repo.LOCK)
            repo.replace(s, rma, entries, source="lookup", now=self.clock(), expire_days=self.cfg.expire_days)

    # ------------------------------------------------------------ matching

    def resolve(self, item: ItemInfo) -> tuple[ItemInfo, Match | None]:
        """The item filled from its expected return, and which return that was (None: no RMA or LPN given).

        Blocking (the store, maybe the WMS): call it off the event loop. Never raises for the WMS.
        """
        if not item.rma and not item.lpn:
            return item, None
        now = self.clock()
        lines, by_lpn = self._lines(item, now)
        unknown_there = ""
        if not lines and by_lpn is None and (item.rma is None or repo.rma_problem(item.rma) is None):
            answer = self.wms.ask(item.rma, item.lpn)
            if answer is not None and answer.status == "failed":
                what = f"RMA {item.rma}" if item.rma else f"LPN {item.lpn}"
                text = f"the WMS could not be asked about {what} ({answer.message}); the item goes on without it"
                return item, Match("lookup_failed", item.rma, text)
            if answer is not None and answer.status == "found" and answer.rma is not None:
                self._keep(answer.rma, answer.entries)
                lines, by_lpn = self._lines(dataclasses.replace(item, rma=item.rma or answer.rma), now)
            elif answer is not None:
                unknown_there = "; the WMS does not know it either"
        line, match = repo.choose(item, lines, by_lpn)
        if line is None:
            return item, dataclasses.replace(match, message=match.message + unknown_there)
        filled, fields = repo.fill(item, line)
        return filled, dataclasses.replace(match, filled=fields)

    def _lines(self, item: ItemInfo, now: datetime) -> tuple[list[repo.StoredLine], repo.StoredLine | None]:
        with self.store.db.read() as s:
            by_lpn = repo.line_by_lpn(s, item.lpn, now, rma=item.rma) if item.lpn else None
            rma = item.rma or (by_lpn.rma if by_lpn is not None else None)
            return (repo.live_lines(s, rma, now) if rma else []), by_lpn


def _numbered(rma: str, lines: Sequence[ReturnLine], expires_at: datetime | None) -> list[Entry]:
    """The entries of one return; a line without a number takes its place in the list. Two of one number: 422."""
    entries = [Entry(rma, ln.line or n, ln, expires_at) for n, ln in enumerate(lines, start=1)]
    seen: set[int] = set()
    for e in entries:
        if e.line in seen:
            raise InvalidInput(f"RMA {rma} names line {e.line} twice", code="duplicate_line")
        seen.add(e.line)
    return entries


def purge_factory(book: ReturnBook) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A background task for ``app.state.background``: delete expired returns at start, then every hour.

    A failed purge is logged and tried again next hour; lookups ignore expired lines meanwhile.
    """

    @asynccontextmanager
    async def purging(app: FastAPI) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    gone = await anyio.to_thread.run_sync(book.purge)
                    if gone:
                        log.info("expected returns: %d expired lines deleted", gone)
                except Exception as exc:
                    log.warning("expected returns: the purge failed, retried in an hour: %s", exc)
                await asyncio.sleep(PURGE_EVERY_S)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()

    return purging
