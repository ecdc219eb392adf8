"""The print queue in the database: a job per label, written with the decision it is printed for.

A job is ``pending`` until a worker prints it (``printed``) or gives up on it
(``failed``, after ``labels.give_up_h``). A worker takes a due job by moving
its ``next_attempt_at`` forward with a conditional UPDATE: that value is the
lease and its fencing token, so two processes sharing the database never print
one job at once, and a worker that died mid-attempt leaves a job that comes due
again by itself. Each process prints only the jobs queued for its own printer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inspector.store.models import LabelJobRow
from inspector.types import utcnow

STATUSES = ("pending", "printed", "failed")


@dataclass(frozen=True, slots=True)
class LeasedJob:
    """A job this worker holds until ``fence`` (the ``next_attempt_at`` it set)."""

    id: str
    inspection_id: str
    decision_id: str | None
    format: str
    size: str
    attempts: int
    created_at: datetime
    fence: datetime


def enqueue(
    session: Session,
    inspection_id: str,
    *,
    decision_id: str | None,
    fmt: str,
    size: str,
    printer: str,
    now: datetime | None = None,
) -> LabelJobRow:
    """A label to print, due at once; in the caller's transaction (the decision's)."""
    now = now or utcnow()
    row = LabelJobRow(
        id=str(uuid.uuid4()),
        inspection_id=inspection_id,
        decision_id=decision_id,
        format=fmt,
        size=size,
        printer=printer,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        last_error=None,
        created_at=now,
        printed_at=None,
    )
    session.add(row)
    session.flush()
    return row


def job_dict(row: LabelJobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "inspection_id": row.inspection_id,
        "decision_id": row.decision_id,
        "format": row.format,
        "size": row.size,
        "printer": row.printer,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "printed_at": row.printed_at,
    }


def list_jobs(
    session: Session, *, inspection_id: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(LabelJobRow).order_by(LabelJobRow.seq.desc()).limit(limit)
    if inspection_id is not None:
        q = q.where(LabelJobRow.inspection_id == inspection_id)
    if status is not None:
        q = q.where(LabelJobRow.status == status)
    return [job_dict(r) for r in session.scalars(q)]


def _due(printer: str, now: datetime) -> Any:
    return (LabelJobRow.status == "pending") & (LabelJobRow.printer == printer) & (LabelJobRow.next_attempt_at <= now)


def any_due(session: Session, *, printer: str, now: datetime) -> bool:
    """A cheap look before taking the write lock."""
    return session.scalar(select(LabelJobRow.seq).where(_due(printer, now)).limit(1)) is not None


def lease_due(session: Session, *, printer: str, now: datetime, hold: timedelta, limit: int = 8) -> list[LeasedJob]:
    """Take up to ``limit`` due jobs of ``printer``, oldest first, for ``hold``."""
    rows = list(session.scalars(select(LabelJobRow).where(_due(printer, now)).order_by(LabelJobRow.seq).limit(limit)))
    taken: list[LeasedJob] = []
    fence = now + hold
    for row in rows:
        res = session.execute(
            update(LabelJobRow)
            .where(
                LabelJobRow.id == row.id,
                LabelJobRow.status == "pending",
                LabelJobRow.next_attempt_at == row.next_attempt_at,
            )
            .values(next_attempt_at=fence)
            .execution_options(synchronize_session=False)
        )
        if getattr(res, "rowcount", 0) == 1:
            taken.append(
                LeasedJob(
                    id=row.id,
                    inspection_id=row.inspection_id,
                    decision_id=row.decision_id,
                    format=row.format,
                    size=row.size,
                    attempts=row.attempts,
                    created_at=row.created_at,
                    fence=fence,
                )
            )
    return taken


def record_attempt(
    session: Session,
    job: LeasedJob,
    *,
    error: str | None,
    now: datetime,
    retry_in: timedelta,
    give_up_after: timedelta,
    final: bool = False,
) -> str | None:
    """Store how an attempt went; the job's new status, or None when the lease was lost meanwhile.

    ``error`` None: printed. Otherwise the job is due again in ``retry_in``, or
    ``failed`` when it is older than ``give_up_after`` or ``final`` (retrying
    cannot help: the label cannot be made).
    """
    values: dict[str, Any] = {"attempts": LabelJobRow.attempts + 1, "last_error": error}
    if error is None:
        values |= {"status": "printed", "printed_at": now}
    elif final or now - job.created_at >= give_up_after:
        values |= {"status": "failed"}
    else:
        values |= {"next_attempt_at": now + retry_in}
    res = session.execute(
        update(LabelJobRow)
        .where(LabelJobRow.id == job.id, LabelJobRow.status == "pending", LabelJobRow.next_attempt_at == job.fence)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        return None
    return str(values.get("status", "pending"))
