"""Reading the bench's record for learning: inspections as served, with their decisions and operator flags."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inspector.store import inspections as repo
from inspector.store.models import DecisionRow, FlagRow, ImageRow, InspectionRow
from inspector.types import utcnow

FLAG_KINDS = ("missed_defect", "false_defect", "anomaly")  # anomaly: an unexplained region confirmed as a class


def flag_dict(row: FlagRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "inspection_id": row.inspection_id,
        "created_at": row.created_at.isoformat(),
        "kind": row.kind,
        "view": row.view,
        "detection": row.detection,
        "class_name": row.class_name,
        "box": json.loads(row.box) if row.box else None,
        "note": row.note,
        "actor": row.actor,
        "key_id": row.key_id,
        "key_name": row.key_name,
        "source": row.source,
    }


def add_flag(
    session: Session,
    inspection_id: str,
    *,
    kind: str,
    view: int,
    detection: int | None,
    class_name: str | None,
    box: Sequence[float] | None,
    note: str | None,
    actor: str,
    key_id: str | None,
    source: str,
    key_name: str | None = None,
) -> FlagRow:
    """Append one flag; the inspection and its decisions are left as they are."""
    if kind not in FLAG_KINDS:
        raise ValueError(f"unknown flag kind {kind!r}; expected one of {', '.join(FLAG_KINDS)}")
    row = FlagRow(
        id=repo.new_id(),
        inspection_id=inspection_id,
        created_at=utcnow(),
        kind=kind,
        view=view,
        detection=detection,
        class_name=class_name,
        box=json.dumps([round(float(v), 2) for v in box]) if box is not None else None,
        note=note,
        actor=actor,
        key_id=key_id,
        key_name=key_name,
        source=source,
    )
    session.add(row)
    session.flush()
    return row


def flags_of(session: Session, inspection_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in inspection_ids}
    if not inspection_ids:
        return out
    q = select(FlagRow).where(FlagRow.inspection_id.in_(list(inspection_ids))).order_by(FlagRow.seq)
    for row in session.scalars(q):
        out[row.inspection_id].append(flag_dict(row))
    return out


def load_inspections(
    session: Session, *, since: datetime | None = None, until: datetime | None = None, batch: int = 500
) -> list[dict[str, Any]]:
    """Every inspection in the window, oldest first, as served, plus ``flags`` and each view's stored image digest."""
    out: list[dict[str, Any]] = []
    last = 0
    while True:
        q = select(InspectionRow).where(InspectionRow.seq > last).order_by(InspectionRow.seq).limit(batch)
        if since is not None:
            q = q.where(InspectionRow.created_at >= since)
        if until is not None:
            q = q.where(InspectionRow.created_at < until)
        rows = list(session.scalars(q))
        if not rows:
            return out
        ids = [r.id for r in rows]
        decisions: dict[str, list[DecisionRow]] = {i: [] for i in ids}
        for d in session.scalars(
            select(DecisionRow).where(DecisionRow.inspection_id.in_(ids)).order_by(DecisionRow.seq)
        ):
            decisions[d.inspection_id].append(d)
        flags = flags_of(session, ids)
        images: dict[str, dict[int, ImageRow]] = {i: {} for i in ids}
        for im in session.scalars(select(ImageRow).where(ImageRow.inspection_id.in_(ids))):
            images[im.inspection_id][im.n] = im
        for r in rows:
            body = repo.compose(json.loads(r.body), decisions[r.id], r.images_pruned_at)
            body["flags"] = flags[r.id]
            for view in body.get("views", []):
                stored = images[r.id].get(int(view["n"]))
                if stored is not None:
                    view["stored"] = {"sha256": stored.sha256, "media_type": stored.media_type}
            out.append(body)
        last = rows[-1].seq
