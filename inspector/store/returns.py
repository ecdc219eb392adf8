"""Expected returns: what the WMS says is coming back, one row per RMA line.

The WMS announces a return before the item reaches the bench (SKU, price paid,
reason, days since sale, flags; an RMA may hold several items, each with its LPN),
so the bench can fill in what the operator does not type. A line is idempotent by
RMA + line: the same content sent again changes nothing (its hash is stored), other
content replaces it. A line is forgotten ``returns.expire_days`` after it was last
written (or at the ``expires_at`` the WMS gave): lookups ignore it from then on and
:func:`purge_expired` deletes it.

Every function takes the caller's session; writers hold the ``returns`` lock
(PostgreSQL) so two pushes of one new RMA never race on its unique key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from inspector.errors import InvalidInput
from inspector.items import ITEM_FLAGS, ItemInfo, check_category, check_flags
from inspector.store.models import ExpectedReturnRow, InspectionRow

MAX_RMA = 200
MAX_LINE = 9999
LOCK = "returns"
_SQL_CHUNK = 500  # values in one IN (...) list

Outcome = Literal["created", "updated", "unchanged"]
Source = Literal["api", "import", "lookup", "demo"]


def rma_problem(rma: str) -> str | None:
    """Why ``rma`` cannot name a return (None when it can): it is a path segment and a label's barcode."""
    if not rma or not rma.strip():
        return "an RMA must not be empty"
    if rma != rma.strip():
        return f"RMA {rma!r} starts or ends with whitespace"
    if len(rma) > MAX_RMA:
        return f"an RMA has at most {MAX_RMA} characters, this one {len(rma)}"
    if not rma.isprintable():
        return f"RMA {rma!r} holds control characters"
    if "/" in rma:
        return f"RMA {rma!r} holds a '/'"
    return None


def check_rma(rma: str) -> str:
    """``rma`` when it is well formed; :class:`InvalidInput` ``invalid_rma`` otherwise."""
    problem = rma_problem(rma)
    if problem is not None:
        raise InvalidInput(problem, code="invalid_rma")
    return rma


def _label_text(value: str | None, what: str) -> str | None:
    if value is not None and (not value.strip() or value != value.strip() or not value.isprintable()):
        raise ValueError(f"{what} {value!r} is empty, padded with whitespace or holds control characters")
    return value


class ReturnLine(BaseModel):
    """One line of a return as the WMS sends it; fields this station does not know are kept as ``extra``."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    line: int | None = Field(None, ge=1, le=MAX_LINE, description="the line of the RMA (default: 1, or its place)")
    lpn: str | None = Field(None, max_length=200, description="the licence plate number of this item")
    sku: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, description="the retailer's category, e.g. electronics/phones")
    price: float | None = Field(None, ge=0, description="what the customer paid")
    reason: str | None = Field(None, max_length=500, description="the return reason (return_reason is read too)")
    days_since_sale: int | None = Field(None, ge=0)
    flags: list[str] = Field(default_factory=list, description=f"some of {', '.join(sorted(ITEM_FLAGS))}")

    @model_validator(mode="before")
    @classmethod
    def _reason_alias(cls, data: Any) -> Any:
        """The inspection's item calls it ``return_reason``: a WMS sending either name is understood."""
        if isinstance(data, dict) and "return_reason" in data and "reason" not in data:
            data = dict(data)
            data["reason"] = data.pop("return_reason")
        return data

    @field_validator("lpn")
    @classmethod
    def _lpn(cls, v: str | None) -> str | None:
        return _label_text(v, "LPN")

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        return None if v is None else check_category(v)

    @field_validator("flags")
    @classmethod
    def _flags(cls, v: list[str]) -> list[str]:
        return check_flags(v)

    def content(self) -> dict[str, Any]:
        """What the line says, in one canonical form (what its hash is taken of)."""
        return {
            "lpn": self.lpn,
            "sku": self.sku,
            "category": self.category,
            "price": self.price,
            "reason": self.reason,
            "days_since_sale": self.days_since_sale,
            "flags": list(self.flags),
            "extra": dict(self.model_extra or {}),
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One line to store: its RMA, what it says, and when it expires if the WMS said."""

    rma: str
    line: int
    data: ReturnLine
    expires_at: datetime | None = None

    def digest(self) -> str:
        body = self.data.content()
        if self.expires_at is not None:  # the WMS's own expiry is part of what it said
            body["expires_at"] = self.expires_at.astimezone(UTC).isoformat()
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredLine:
    """One stored line, as the API serves it: ``extra`` holds the WMS's other fields as sent, ``source`` who wrote
    it (api, import, lookup: asked of the WMS, demo)."""

    rma: str
    line: int
    lpn: str | None
    sku: str | None
    category: str | None
    price: float | None
    reason: str | None
    days_since_sale: int | None
    flags: tuple[str, ...]
    extra: dict[str, Any]
    source: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, row: ExpectedReturnRow) -> StoredLine:
        return cls(
            rma=row.rma,
            line=row.line,
            lpn=row.lpn,
            sku=row.sku,
            category=row.category,
            price=row.price,
            reason=row.reason,
            days_since_sale=row.days_since_sale,
            flags=tuple(json.loads(row.flags)),
            extra=json.loads(row.extra),
            source=row.source,
            created_at=row.created_at,
            updated_at=row.updated_at,
            expires_at=row.expires_at,
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["flags"] = list(self.flags)
        return out


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is read as UTC (what a WMS sending no offset means)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------ writing


def upsert(
    session: Session, entries: Sequence[Entry], *, source: Source, now: datetime, expire_days: float
) -> list[Outcome]:
    """Store ``entries`` (one outcome each, in order); the lines of an RMA that are not named stay.

    A line that exists and is live with the same content is ``unchanged`` (nothing is written, its
    expiry included); one with other content is ``updated``; a new line, or one that had expired,
    is ``created``. The same line twice in ``entries``: the later one is compared with the earlier.
    """
    rows = _existing(session, {e.rma for e in entries})
    out: list[Outcome] = []
    for e in entries:
        digest = e.digest()
        expires = e.expires_at or now + timedelta(days=expire_days)
        row = rows.get((e.rma, e.line))
        if row is not None and row.expires_at > now and row.request_hash == digest:
            out.append("unchanged")
            continue
        c = e.data.content()
        values = {
            "lpn": c["lpn"],
            "sku": c["sku"],
            "category": c["category"],
            "price": c["price"],
            "reason": c["reason"],
            "days_since_sale": c["days_since_sale"],
            "flags": json.dumps(c["flags"]),
            "extra": json.dumps(c["extra"], ensure_ascii=False, separators=(",", ":")),
            "request_hash": digest,
            "source": source,
            "updated_at": now,
            "expires_at": expires,
        }
        if row is None:
            row = ExpectedReturnRow(rma=e.rma, line=e.line, created_at=now, **values)
            session.add(row)
            rows[(e.rma, e.line)] = row
            out.append("created")
            continue
        out.append("updated" if row.expires_at > now else "created")
        if row.expires_at <= now:
            row.created_at = now
        for name, value in values.items():
            setattr(row, name, value)
    session.flush()
    return out


def replace(
    session: Session, rma: str, entries: Sequence[Entry], *, source: Source, now: datetime, expire_days: float
) -> tuple[bool, list[Outcome]]:
    """Make ``entries`` the lines of ``rma``: others are deleted. Returns (whether it was known, outcomes)."""
    known = bool(live_lines(session, rma, now))
    outcomes = upsert(session, entries, source=source, now=now, expire_days=expire_days)
    keep = {e.line for e in entries}
    session.execute(delete(ExpectedReturnRow).where(ExpectedReturnRow.rma == rma, ExpectedReturnRow.line.not_in(keep)))
    return known, outcomes


def forget(session: Session, rma: str, now: datetime) -> bool:
    """Delete every line of ``rma``; whether a live one was there."""
    known = bool(live_lines(session, rma, now))
    session.execute(delete(ExpectedReturnRow).where(ExpectedReturnRow.rma == rma))
    return known


def purge_expired(session: Session, now: datetime) -> int:
    """Delete the lines that expired; how many went."""
    res = session.execute(delete(ExpectedReturnRow).where(ExpectedReturnRow.expires_at <= now))
    return int(getattr(res, "rowcount", 0) or 0)


def _existing(session: Session, rmas: Iterable[str]) -> dict[tuple[str, int], ExpectedReturnRow]:
    names = sorted(rmas)
    out: dict[tuple[str, int], ExpectedReturnRow] = {}
    for i in range(0, len(names), _SQL_CHUNK):
        q = select(ExpectedReturnRow).where(ExpectedReturnRow.rma.in_(names[i : i + _SQL_CHUNK]))
        out.update({(r.rma, r.line): r for r in session.scalars(q)})
    return out


# ------------------------------------------------------------------ reading


def live_lines(session: Session, rma: str, now: datetime) -> list[StoredLine]:
    """The lines of ``rma`` that have not expired, by line number."""
    q = (
        select(ExpectedReturnRow)
        .where(ExpectedReturnRow.rma == rma, ExpectedReturnRow.expires_at > now)
        .order_by(ExpectedReturnRow.line)
    )
    return [StoredLine.of(r) for r in session.scalars(q)]


def line_by_lpn(session: Session, lpn: str, now: datetime, *, rma: str | None = None) -> StoredLine | None:
    """The live line that carries ``lpn`` (within ``rma`` when given); the newest when several do."""
    q = select(ExpectedReturnRow).where(ExpectedReturnRow.lpn == lpn, ExpectedReturnRow.expires_at > now)
    if rma is not None:
        q = q.where(ExpectedReturnRow.rma == rma)
    row = session.scalar(q.order_by(ExpectedReturnRow.updated_at.desc(), ExpectedReturnRow.seq.desc()).limit(1))
    return StoredLine.of(row) if row is not None else None


def inspections_of(session: Session, rma: str) -> list[str]:
    """The inspections that were matched to a line of ``rma``, oldest first."""
    q = (
        select(InspectionRow.id)
        .where(InspectionRow.rma == rma, InspectionRow.return_line.is_not(None))
        .order_by(InspectionRow.seq)
    )
    return list(session.scalars(q))


def describe(rma: str, lines: Sequence[StoredLine], inspections: Sequence[str]) -> dict[str, Any]:
    """A return as the API serves it: its lines, when it expires (its last line), who last wrote it."""
    newest = max(lines, key=lambda x: x.updated_at)
    return {
        "rma": rma,
        "lines": [ln.to_dict() for ln in lines],
        "expires_at": max(ln.expires_at for ln in lines),
        "source": newest.source,
        "updated_at": newest.updated_at,
        "inspections": list(inspections),
    }


# ----------------------------------------------------------------- matching


MatchStatus = Literal["matched", "ambiguous", "unknown", "lookup_failed"]
FILLED = ("sku", "category", "price", "return_reason", "days_since_sale")


@dataclass(frozen=True, slots=True)
class Match:
    """Which expected return an item is, as its inspection records it (``return`` in the JSON)."""

    status: MatchStatus
    rma: str | None
    message: str
    line: int | None = None
    lines: int = 0
    filled: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rma": self.rma,
            "line": self.line,
            "status": self.status,
            "lines": self.lines,
            "message": self.message,
            "filled": list(self.filled),
        }


def _numbers(lines: Sequence[StoredLine]) -> str:
    return ", ".join(str(ln.line) for ln in lines)


def choose(item: ItemInfo, lines: Sequence[StoredLine], by_lpn: StoredLine | None) -> tuple[StoredLine | None, Match]:
    """The line the item is, from the live lines of its RMA and the line its LPN names, and why.

    An LPN picks its line; an RMA with one line is that line; with several, the item's
    ``line`` picks one, else the answer is ambiguous and nothing is filled.
    """
    if by_lpn is not None:
        return by_lpn, _matched(by_lpn, len(lines) or 1, f"LPN {by_lpn.lpn}")
    rma = item.rma
    if not lines:
        what = f"RMA {rma}" if rma else f"LPN {item.lpn}"
        return None, Match("unknown", rma, f"{what} is not among the expected returns")
    rma = lines[0].rma
    if item.line is not None:
        chosen = next((ln for ln in lines if ln.line == item.line), None)
        if chosen is None:
            text = f"RMA {rma} has no line {item.line} (its lines: {_numbers(lines)})"
            return None, Match("unknown", rma, text, lines=len(lines))
        return chosen, _matched(chosen, len(lines), f"line {item.line}")
    if len(lines) == 1:
        return lines[0], _matched(lines[0], 1, f"RMA {rma}")
    lpn = f"; LPN {item.lpn} is on none of them" if item.lpn else ""
    text = f"RMA {rma} has {len(lines)} lines ({_numbers(lines)}){lpn}: choose the line or scan the item's LPN"
    return None, Match("ambiguous", rma, text, lines=len(lines))


def _matched(line: StoredLine, count: int, by: str) -> Match:
    what = f"expected return {line.rma} line {line.line} of {count}" if count > 1 else f"expected return {line.rma}"
    return Match("matched", line.rma, f"{what}, found by {by}", line=line.line, lines=count)


def fill(item: ItemInfo, line: StoredLine) -> tuple[ItemInfo, tuple[str, ...]]:
    """The item completed from its expected line; what the item says itself wins. Also the fields filled."""
    given: Mapping[str, Any] = {
        "sku": line.sku,
        "category": line.category,
        "price": line.price,
        "return_reason": line.reason,
        "days_since_sale": line.days_since_sale,
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None and getattr(item, k) is None}
    flags = set(line.flags) - item.flags
    if flags:
        changes["flags"] = item.flags | flags
    filled = tuple(k for k in (*FILLED, "flags") if k in changes)
    changes.update({"rma": item.rma or line.rma, "lpn": item.lpn or line.lpn, "line": line.line})
    return dataclasses.replace(item, **changes), filled
