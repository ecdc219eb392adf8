"""The retention policy: old views go, every record stays.

An inspection's views (and any copy derived from them, such as a cached
annotated JPEG) are deleted once the inspection is older than the days its
disposition keeps them; the inspection, its decisions and flags stay, and
``inspections.images_pruned_at`` says when the views went. The disposition
that counts is the outcome in force: the latest decision's when there is one,
else the recommendation. An operator who decides RETURN_TO_VENDOR makes a
claim that needs its evidence, whatever the model recommended; an item the
model sent to the vendor but the operator recycled needs none.

Images are content-addressed, so one file may serve several inspections: a
file goes only when no inspection whose views are kept names it, checked in the
write transaction that deletes it, under the per-image lock that a request
storing the same view holds until its row commits (PostgreSQL; SQLite's write
transactions are serialised anyway). An inspection on its way may also have
stored the file before that: the image store refreshes a file's mtime whenever
it stores those bytes again, and the pruner moves a file aside before it looks
at that mtime, so a file stored again within ``IN_USE`` is put back rather than
deleted (and one stored after it was moved aside is written anew); a later run
deletes it if no inspection came to name it after all.

Work goes in batches of ``BATCH`` inspections, each marked in its own short
write transaction, their files deleted ``FILES_PER_TRANSACTION`` at a time, so
a big first prune never holds the write lock for long.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inspector.config import RetentionConfig
from inspector.store.db import Database
from inspector.store.images import ImageStore
from inspector.store.models import DecisionRow, ImageRow, InspectionRow
from inspector.types import DispositionPath, utcnow

BATCH = 200  # inspections marked per write transaction
FILES_PER_TRANSACTION = 50  # files checked and deleted per write transaction
IN_USE = timedelta(hours=1)  # longer than any request takes from storing its views to committing its row
REVISIT = timedelta(days=7)  # files left by a run because they were in use are deleted by the runs of this week
_SQL_CHUNK = 500  # values in one IN (...) list


class RetentionPolicy:
    """How many days the views of an inspection with a given disposition are kept (None: forever)."""

    def __init__(self, cfg: RetentionConfig) -> None:
        known = {d.value for d in DispositionPath}
        unknown = sorted(set(cfg.keep_days_by_disposition) - known)
        if unknown:
            raise ValueError(
                f"retention.keep_days_by_disposition names unknown dispositions {', '.join(unknown)}; "
                f"use {', '.join(sorted(known))}"
            )
        negative = sorted(k for k, v in cfg.keep_days_by_disposition.items() if v is not None and v < 0)
        if negative:
            raise ValueError(f"retention.keep_days_by_disposition: days must be 0 or more ({', '.join(negative)})")
        self.default = cfg.image_days
        self.overrides: Mapping[str, int | None] = dict(cfg.keep_days_by_disposition)

    def days(self, disposition: str) -> int | None:
        return self.overrides.get(disposition, self.default)

    @property
    def shortest(self) -> int | None:
        """The fewest days any disposition keeps; None when every view is kept forever."""
        finite = [d for d in (self.default, *self.overrides.values()) if d is not None]
        return min(finite) if finite else None

    @property
    def active(self) -> bool:
        return self.shortest is not None


@dataclass
class PruneReport:
    """What a prune removed (or, in a dry run, would remove)."""

    dry_run: bool
    inspections: int = 0
    files: int = 0
    bytes: int = 0
    oldest: datetime | None = None  # the oldest inspection pruned
    in_use_kept: int = 0  # files stored again within IN_USE: an inspection on its way names them
    _looked_at: set[str] = field(default_factory=set, repr=False)
    _shared: set[str] = field(default_factory=set, repr=False)

    @property
    def shared_kept(self) -> int:
        """Files kept because an inspection still keeping its views names them."""
        return len(self._shared - self._looked_at)

    def summary(self) -> str:
        verb = "would prune" if self.dry_run else "pruned"
        if not self.inspections:
            return f"{verb} nothing: no inspection is past its retention"
        oldest = self.oldest.date().isoformat() if self.oldest else "-"
        return (
            f"{verb} the views of {self.inspections} inspections (oldest {oldest}): "
            f"{self.files} files, {self.bytes / 1e6:.1f} MB; "
            f"{self.shared_kept} files kept, shared with inspections still kept"
            + (f"; {self.in_use_kept} kept, stored again within the hour" if self.in_use_kept else "")
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "inspections": self.inspections,
            "files": self.files,
            "bytes": self.bytes,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "shared_kept": self.shared_kept,
            "in_use_kept": self.in_use_kept,
        }


def _chunks(values: Iterable[str], size: int = _SQL_CHUNK) -> Iterator[list[str]]:
    chunk: list[str] = []
    for v in values:
        chunk.append(v)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _outcome(session: Session, ids: list[str]) -> dict[str, str]:
    """The latest decision's disposition of each inspection that has one."""
    q = select(DecisionRow.inspection_id, DecisionRow.disposition).where(DecisionRow.inspection_id.in_(ids))
    return dict(session.execute(q.order_by(DecisionRow.seq)).all())


@dataclass(frozen=True, slots=True)
class _Due:
    id: str
    created_at: datetime


def _due(session: Session, policy: RetentionPolicy, now: datetime, after_seq: int) -> tuple[list[_Due], int]:
    """The next batch of inspections past their retention, and the last seq looked at (0: no more)."""
    shortest = policy.shortest
    if shortest is None:
        return [], 0
    q = (
        select(InspectionRow.seq, InspectionRow.id, InspectionRow.created_at, InspectionRow.disposition)
        .where(
            InspectionRow.images_pruned_at.is_(None),
            InspectionRow.created_at < now - timedelta(days=shortest),
            InspectionRow.seq > after_seq,
        )
        .order_by(InspectionRow.seq)
        .limit(BATCH)
    )
    rows = list(session.execute(q))
    if not rows:
        return [], 0
    outcome = _outcome(session, [r.id for r in rows])
    due = []
    for r in rows:
        days = policy.days(outcome.get(r.id, r.disposition))
        if days is not None and r.created_at < now - timedelta(days=days):
            due.append(_Due(r.id, r.created_at))
    return due, int(rows[-1].seq)


def _digests(session: Session, ids: list[str]) -> set[str]:
    q = select(ImageRow.sha256).where(ImageRow.inspection_id.in_(ids))
    return set(session.scalars(q))


def still_named(session: Session, digests: Iterable[str], *, besides: Collection[str] = ()) -> set[str]:
    """The digests that an inspection keeping its views (and not in ``besides``) still names."""
    named: set[str] = set()
    for chunk in _chunks(digests):
        q = (
            select(ImageRow.sha256, ImageRow.inspection_id)
            .join(InspectionRow, InspectionRow.id == ImageRow.inspection_id)
            .where(ImageRow.sha256.in_(chunk), InspectionRow.images_pruned_at.is_(None))
        )
        named.update(sha for sha, iid in session.execute(q) if iid not in besides)
    return named


def derived_files(original: Path) -> list[Path]:
    """Copies made from an original and kept beside it (``<sha256>.<what>``, e.g. an annotated JPEG).

    Files starting with a dot are writes in progress, never derived copies.
    """
    try:
        return sorted(p for p in original.parent.glob(f"{original.name}?*") if p.name[len(original.name)] in ".-_")
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _recent(path: Path, now: datetime) -> bool:
    return path.stat().st_mtime > (now - IN_USE).timestamp()


def _remove(images: ImageStore, digest: str, now: datetime, report: PruneReport) -> None:
    """Delete one original and its derived copies, unless it was stored again within ``IN_USE``."""
    original = images.path_for(digest)
    extra = derived_files(original)
    if report.dry_run:
        if original.is_file() and _recent(original, now):
            report.in_use_kept += 1
            return
        report.bytes += _size(original) + sum(_size(p) for p in extra)
        report.files += original.is_file()
        return
    aside = original.with_name(f".{digest}.pruning")
    try:
        original.replace(aside)  # from here a new store of these bytes writes a new file
        moved = True
    except FileNotFoundError:
        moved = False
    if moved:
        if _recent(aside, now):  # stored again by a request whose row is not committed yet: put it back
            aside.replace(original)
            report.in_use_kept += 1
            return
        report.bytes += _size(aside)
        report.files += 1
        aside.unlink(missing_ok=True)
    for p in extra:
        report.bytes += _size(p)
        p.unlink(missing_ok=True)


def _mark(db: Database, ids: list[str], now: datetime) -> list[str]:
    """Mark the inspections pruned at ``now``; returns those this run marked (not another prune)."""
    with db.write() as s:
        marked = s.execute(
            update(InspectionRow)
            .where(InspectionRow.id.in_(ids), InspectionRow.images_pruned_at.is_(None))
            .values(images_pruned_at=now)
            .execution_options(synchronize_session=False)
        )
    if getattr(marked, "rowcount", len(ids)) == len(ids):
        return ids
    with db.read() as s:
        q = select(InspectionRow.id).where(InspectionRow.id.in_(ids), InspectionRow.images_pruned_at == now)
        return list(s.scalars(q))


def _delete_files(
    db: Database, images: ImageStore, digests: Iterable[str], now: datetime, report: PruneReport, besides: set[str]
) -> None:
    """Delete the files no inspection keeping its views names, a few per write transaction."""
    for chunk in _chunks(sorted(set(digests) - report._looked_at), FILES_PER_TRANSACTION):
        with db.read() if report.dry_run else db.write() as s:
            if not report.dry_run:  # the locks a request storing a view holds until it commits
                db.lock_images(s, chunk)
            kept = still_named(s, chunk, besides=besides)
            report._shared.update(kept)  # a later batch may let them go
            for digest in chunk:
                if digest not in kept:
                    report._looked_at.add(digest)
                    _remove(images, digest, now, report)


def _leftovers(db: Database, images: ImageStore, now: datetime, report: PruneReport, besides: set[str]) -> None:
    """Files of inspections pruned by an earlier run (within ``REVISIT``) that it had to leave: stored again then."""
    after = 0
    while True:
        with db.read() as s:
            q = (
                select(InspectionRow.seq, InspectionRow.id)
                .where(
                    InspectionRow.images_pruned_at >= now - REVISIT,
                    InspectionRow.images_pruned_at < now,
                    InspectionRow.seq > after,
                )
                .order_by(InspectionRow.seq)
                .limit(BATCH)
            )
            rows = s.execute(q).all()
            if not rows:
                return
            after = int(rows[-1].seq)
            left = {d for d in _digests(s, [r.id for r in rows]) if images.exists(d)}
            left -= still_named(s, left, besides=besides)
        _delete_files(db, images, left, now, report, besides)


def prune(
    db: Database, images: ImageStore, cfg: RetentionConfig, *, dry_run: bool = False, now: datetime | None = None
) -> PruneReport:
    """Delete the views of every inspection past its retention (``dry_run``: only count them)."""
    policy = RetentionPolicy(cfg)
    now = now or utcnow()
    report = PruneReport(dry_run=dry_run)
    after = 0
    planned: set[str] = set()  # a dry run marks nothing: what it would have marked
    while True:
        with db.read() as s:
            due, after = _due(s, policy, now, after)
        if not after:
            break
        ids = [r.id for r in due]
        if dry_run:
            planned.update(ids)
        elif ids:
            ids = _mark(db, ids, now)
        if not ids:
            continue
        report.inspections += len(ids)
        marked = set(ids)
        oldest = min(r.created_at for r in due if r.id in marked)
        report.oldest = oldest if report.oldest is None else min(report.oldest, oldest)
        with db.read() as s:
            digests = _digests(s, ids)
        _delete_files(db, images, digests, now, report, planned)
    _leftovers(db, images, now, report, planned)
    return report


def pruned_at(session: Session, inspection_id: str) -> datetime | None:
    """When the views of an inspection were pruned (None: kept, or no such inspection)."""
    return session.scalar(select(InspectionRow.images_pruned_at).where(InspectionRow.id == inspection_id))
