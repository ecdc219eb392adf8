"""Bodies of the expected-returns routes (``/v1/returns``), and the reading of one bulk entry.

A line's own fields are :class:`~inspector.store.returns.ReturnLine`; whatever else the
WMS sends on a line is kept as its ``extra`` and served back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inspector.api.problems import validation_errors
from inspector.errors import InvalidInput
from inspector.store.returns import Entry, ReturnLine, StoredLine, as_utc, check_rma

MAX_LINES = 1000  # lines of one RMA in one PUT


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ReturnIn(_In):
    """One return: its lines replace those stored for the RMA."""

    lines: list[ReturnLine] = Field(min_length=1, max_length=MAX_LINES)
    expires_at: datetime | None = Field(
        None, description="forget it then (ISO 8601; no offset = UTC); default: returns.expire_days after this write"
    )
    rma: str | None = Field(None, description="optional; when given it must be the RMA of the URL")


class ReturnOut(_Out):
    rma: str
    lines: list[StoredLine] = Field(description="its live lines, by line number")
    expires_at: datetime = Field(description="when its last line is forgotten")
    source: str = Field(description="who wrote its newest line: api, import, lookup or demo")
    updated_at: datetime
    inspections: list[str] = Field(description="ids of the inspections that were matched to one of its lines")


class BadEntry(_Out):
    index: int = Field(description="the entry's place in the array, or among the non-blank JSON lines, from 0")
    rma: str | None = None
    line: int | None = None
    code: str
    error: str


class BulkOut(_Out):
    created: int
    updated: int
    unchanged: int
    bad: list[BadEntry] = Field(description="the entries that were not stored and why; the others were")


def entry_of(raw: Any) -> Entry:
    """One bulk entry (``{"rma", "line" (default 1), ...}``) checked; :class:`InvalidInput` says what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidInput("an entry is a JSON object with rma, line, sku, ...", code="invalid_entry")
    rma = raw.get("rma")
    if not isinstance(rma, str):
        raise InvalidInput("rma is missing or not a string", code="invalid_rma")
    check_rma(rma)
    fields = {k: v for k, v in raw.items() if k not in ("rma", "expires_at")}
    try:
        line = ReturnLine.model_validate(fields)
        expires = _expiry(raw.get("expires_at"))
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        raise InvalidInput(detail, code="invalid_line") from None
    return Entry(rma, line.line or 1, line, expires)


class _Expiry(_In):
    expires_at: datetime | None = None


def _expiry(value: Any) -> datetime | None:
    when = _Expiry.model_validate({"expires_at": value}).expires_at
    return as_utc(when) if when is not None else None
