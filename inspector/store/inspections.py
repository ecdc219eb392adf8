"""Reading and writing inspections, their images, decisions and idempotency keys.

Every function takes the caller's session, so one transaction can hold an
inspection, its images, its idempotency record and its outbox event together.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from inspector.errors import InvalidInput
from inspector.store.models import DecisionRow, IdempotencyRow, ImageRow, InspectionRow, PolicyRow
from inspector.types import utcnow


def new_id() -> str:
    return str(uuid.uuid4())


# -------------------------------------------------------------- idempotency


class KeyLost(RuntimeError):
    """The idempotency key is no longer this request's: its lease ran out and another request took it."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What to do with a request that carries an Idempotency-Key.

    ``lease`` (for ``new``) is the key's ``locked_until`` as this request set
    it: a fencing token, since every take-over sets a later one, so only the
    current holder can complete or release the key.
    """

    kind: Literal["new", "replay", "conflict", "busy"]
    inspection_id: str | None = None
    lease: datetime | None = None


def claim_key(session: Session, key: str, request_hash: str, *, lease: timedelta) -> Claim:
    """Take ``key`` for this request, or say why not.

    ``new``: this request owns the key and must run; ``replay``: it already ran
    with the same body; ``conflict``: the key was used with a different body;
    ``busy``: the first request with this key is still running. The primary key
    decides races between processes: the loser's insert raises IntegrityError
    (the caller looks again), and a take-over is a conditional UPDATE.
    """
    now = utcnow()
    row = session.get(IdempotencyRow, key)
    if row is None:
        until = now + lease
        session.add(
            IdempotencyRow(
                key=key,
                request_hash=request_hash,
                status="pending",
                inspection_id=None,
                locked_until=until,
                created_at=now,
            )
        )
        session.flush()
        return Claim("new", lease=until)
    if row.request_hash != request_hash:
        return Claim("conflict", row.inspection_id)
    if row.status == "done":
        return Claim("replay", row.inspection_id)
    if row.locked_until < now:  # the first request died mid-way: take over, unless another process just did
        until = now + lease
        res = session.execute(
            update(IdempotencyRow)
            .where(
                IdempotencyRow.key == key,
                IdempotencyRow.status == "pending",
                IdempotencyRow.locked_until == row.locked_until,
            )
            .values(locked_until=until)
            .execution_options(synchronize_session=False)
        )
        if getattr(res, "rowcount", 0) == 1:
            return Claim("new", lease=until)
    return Claim("busy")


def release_key(session: Session, key: str, request_hash: str, lease: datetime | None = None) -> None:
    """Forget a pending key whose request failed, so that a retry can run (only while this request holds it)."""
    q = delete(IdempotencyRow).where(
        IdempotencyRow.key == key, IdempotencyRow.request_hash == request_hash, IdempotencyRow.status == "pending"
    )
    if lease is not None:
        q = q.where(IdempotencyRow.locked_until == lease)
    session.execute(q)


# -------------------------------------------------------------- inspections


@dataclass(frozen=True, slots=True)
class StoredImage:
    n: int
    sha256: str
    media_type: str
    size_bytes: int
    width: int
    height: int
    camera_id: str


def save_inspection(
    session: Session,
    body: dict[str, Any],
    *,
    images: Sequence[StoredImage],
    source: str,
    request_hash: str,
    created_by: str | None,
    idempotency_key: str | None,
    idempotency_lease: datetime | None = None,
) -> InspectionRow:
    """Insert the recommendation and its images; marks the idempotency key done in the same transaction.

    Raises :class:`KeyLost` (and the caller rolls back) when the key is no
    longer held with ``idempotency_lease``: another request owns it now.
    """
    item = body.get("item") or {}
    versions = body["versions"]
    matched = body.get("return") or {}
    row = InspectionRow(
        id=body["id"],
        created_at=datetime.fromisoformat(body["created_at"]),
        station_id=body["station_id"],
        source=source,
        rma=item.get("rma"),
        lpn=item.get("lpn"),
        sku=item.get("sku"),
        category=item.get("category"),
        grade=body["grade"]["level"],
        disposition=body["disposition"]["path"],
        model_version=versions["model"],
        policy_version=versions["policy"],
        rubric_version=versions["rubric"],
        request_hash=request_hash,
        created_by=created_by,
        body=json.dumps(body, separators=(",", ":")),
        return_line=matched.get("line") if matched.get("status") == "matched" else None,
    )
    session.add(row)
    session.flush()
    for im in images:
        session.add(
            ImageRow(
                inspection_id=row.id,
                n=im.n,
                sha256=im.sha256,
                media_type=im.media_type,
                size_bytes=im.size_bytes,
                width=im.width,
                height=im.height,
                camera_id=im.camera_id,
            )
        )
    if idempotency_key is not None:
        q = update(IdempotencyRow).where(
            IdempotencyRow.key == idempotency_key,
            IdempotencyRow.request_hash == request_hash,
            IdempotencyRow.status == "pending",
        )
        if idempotency_lease is not None:
            q = q.where(IdempotencyRow.locked_until == idempotency_lease)
        res = session.execute(
            q.values(status="done", inspection_id=row.id).execution_options(synchronize_session=False)
        )
        if getattr(res, "rowcount", 0) != 1:
            raise KeyLost(f"the idempotency key {idempotency_key!r} was taken over before this inspection committed")
    session.flush()
    return row


def decision_dict(d: DecisionRow) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": d.created_at.isoformat(),
        "action": d.action,
        "grade": d.grade,
        "disposition": d.disposition,
        "reason_code": d.reason_code,
        "note": d.note,
        "actor": d.actor,
        "key_id": d.key_id,
        "key_name": d.key_name,
        "source": d.source,
    }


def compose(
    body: dict[str, Any], decisions: Sequence[DecisionRow], images_pruned_at: datetime | None = None
) -> dict[str, Any]:
    """The inspection as served: the stored recommendation, every decision, and the outcome in force."""
    out = dict(body)
    out["images_pruned_at"] = images_pruned_at
    history = [decision_dict(d) for d in decisions]
    out["decisions"] = history
    if history:
        last = history[-1]
        out["final"] = {
            "grade": last["grade"],
            "disposition": last["disposition"],
            "decided": True,
            "decision_id": last["id"],
            "actor": last["actor"],
            "decided_at": last["created_at"],
        }
    else:
        out["final"] = {
            "grade": body["grade"]["level"],
            "disposition": body["disposition"]["path"],
            "decided": False,
            "decision_id": None,
            "actor": None,
            "decided_at": None,
        }
    return out


def _decisions(session: Session, inspection_ids: Sequence[str]) -> dict[str, list[DecisionRow]]:
    out: dict[str, list[DecisionRow]] = {i: [] for i in inspection_ids}
    if not inspection_ids:
        return out
    q = select(DecisionRow).where(DecisionRow.inspection_id.in_(inspection_ids)).order_by(DecisionRow.seq)
    for d in session.scalars(q):
        out[d.inspection_id].append(d)
    return out


def get_inspection(session: Session, inspection_id: str) -> dict[str, Any] | None:
    row = session.scalar(select(InspectionRow).where(InspectionRow.id == inspection_id))
    if row is None:
        return None
    return compose(json.loads(row.body), _decisions(session, [row.id])[row.id], row.images_pruned_at)


def get_image(session: Session, inspection_id: str, n: int) -> ImageRow | None:
    return session.scalar(select(ImageRow).where(ImageRow.inspection_id == inspection_id, ImageRow.n == n))


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position in a cursor; :class:`InvalidInput` for anything this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        seq = json.loads(raw)["s"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API handed out", code="bad_cursor") from exc
    if not isinstance(seq, int) or seq < 0:
        raise InvalidInput("cursor is not one this API handed out", code="bad_cursor")
    return seq


def list_inspections(
    session: Session,
    *,
    rma: str | None = None,
    sku: str | None = None,
    since: datetime | None = None,
    grade: str | None = None,
    disposition: str | None = None,
    station: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns one page and the cursor of the next page (None on the last one).

    The cursor is a keyset on ``seq`` (the insert order), not an offset, so
    inspections stored while a client pages, by this station or another, never
    shift a page: nothing is seen twice and nothing already stored is skipped.
    """
    q = select(InspectionRow).order_by(InspectionRow.seq.desc()).limit(limit + 1)
    if rma is not None:
        q = q.where(InspectionRow.rma == rma)
    if sku is not None:
        q = q.where(InspectionRow.sku == sku)
    if since is not None:
        q = q.where(InspectionRow.created_at >= since)
    if grade is not None:
        q = q.where(InspectionRow.grade == grade)
    if disposition is not None:
        q = q.where(InspectionRow.disposition == disposition)
    if station is not None:
        q = q.where(InspectionRow.station_id == station)
    if cursor is not None:
        q = q.where(InspectionRow.seq < decode_cursor(cursor))
    rows = list(session.scalars(q))
    page, more = rows[:limit], len(rows) > limit
    decisions = _decisions(session, [r.id for r in page])
    items = [compose(json.loads(r.body), decisions[r.id], r.images_pruned_at) for r in page]
    return items, (encode_cursor(page[-1].seq) if more and page else None)


def add_decision(
    session: Session,
    inspection_id: str,
    *,
    action: str,
    grade: str,
    disposition: str,
    reason_code: str | None,
    note: str | None,
    actor: str,
    key_id: str | None,
    source: str,
    key_name: str | None = None,
) -> DecisionRow:
    """Append one decision: ``actor`` is who the client says decided, ``key_name`` the key that wrote it."""
    row = DecisionRow(
        id=new_id(),
        inspection_id=inspection_id,
        created_at=utcnow(),
        action=action,
        grade=grade,
        disposition=disposition,
        reason_code=reason_code,
        note=note,
        actor=actor,
        key_id=key_id,
        key_name=key_name,
        source=source,
    )
    session.add(row)
    session.flush()
    return row


def inspection_body(session: Session, inspection_id: str) -> dict[str, Any] | None:
    """The stored recommendation alone (no decisions)."""
    raw = session.scalar(select(InspectionRow.body).where(InspectionRow.id == inspection_id))
    return json.loads(raw) if raw is not None else None


# ------------------------------------------------------------------ policies


def save_policy(session: Session, version: str, body: dict[str, Any], created_by: str | None) -> PolicyRow:
    row = PolicyRow(version=version, body=json.dumps(body), created_at=utcnow(), created_by=created_by)
    session.add(row)
    session.flush()
    return row


def latest_policy(session: Session) -> PolicyRow | None:
    return session.scalar(select(PolicyRow).order_by(PolicyRow.seq.desc()).limit(1))
