"""The tables of the station's durable record (SQLAlchemy 2, portable SQL only).

Inspections are immutable once written: a decision is a new row, never an
update, so the recommendation and every later decision stay side by side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no BIGINT autoincrement; Integer there, BigInteger elsewhere.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime}  # noqa: RUF012


class ApiKey(Base):
    """A client key: only its sha256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class InspectionRow(Base):
    """One inspected item: the recommendation as served, and columns to filter on."""

    __tablename__ = "inspections"
    __table_args__ = (Index("ix_inspections_station_id", "station_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    station_id: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(32))
    rma: Mapped[str | None] = mapped_column(String(200), index=True)
    lpn: Mapped[str | None] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(200), index=True)
    category: Mapped[str | None] = mapped_column(String(200))
    grade: Mapped[str] = mapped_column(String(16), index=True)
    disposition: Mapped[str] = mapped_column(String(32), index=True)
    model_version: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[str] = mapped_column(String(200))
    rubric_version: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # the recommendation JSON, exactly as first served
    images_pruned_at: Mapped[datetime | None]  # the retention policy removed the views; the record stays
    return_line: Mapped[int | None] = mapped_column(Integer)  # the expected return's line this item was


class ImageRow(Base):
    """One view of an inspection: the content-addressed original and its size."""

    __tablename__ = "inspection_images"
    __table_args__ = (UniqueConstraint("inspection_id", "n", name="uq_inspection_images_n"),)

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(String(36), ForeignKey("inspections.id"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    camera_id: Mapped[str] = mapped_column(String(100))


class DecisionRow(Base):
    """A final decision on an inspection; appended, never updated."""

    __tablename__ = "decisions"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    inspection_id: Mapped[str] = mapped_column(String(36), ForeignKey("inspections.id"), index=True)
    created_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str] = mapped_column(String(16))
    disposition: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))  # who the client says acted
    key_id: Mapped[str | None] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(200))  # the key that wrote it, whatever the claim
    source: Mapped[str] = mapped_column(String(32))


class IdempotencyRow(Base):
    """One Idempotency-Key: the request it was first used with and the response served."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | done
    inspection_id: Mapped[str | None] = mapped_column(String(36))
    locked_until: Mapped[datetime]
    created_at: Mapped[datetime]


class PolicyRow(Base):
    """A disposition policy put through the API; the newest one is in force."""

    __tablename__ = "policies"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(32))


class WebhookEndpointRow(Base):
    """A registered receiver. The secret is kept as given: it is needed to sign."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[str] = mapped_column(Text)  # JSON list of event types
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]  # the first failure since the last success
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class OutboxRow(Base):
    """An event, written in the same transaction as the change it announces."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id, stable across retries
    type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON payload that is signed and sent
    created_at: Mapped[datetime]


class DeliveryRow(Base):
    """One event to one endpoint: leased by a worker, retried with backoff until delivered or dead."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), ForeignKey("outbox.id"))
    endpoint_id: Mapped[str] = mapped_column(String(32), ForeignKey("webhook_endpoints.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(64))  # the worker holding the lease
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class ExpectedReturnRow(Base):
    """One line of a return the WMS announced: what item to expect, what was paid, why it came back."""

    __tablename__ = "expected_returns"
    __table_args__ = (UniqueConstraint("rma", "line", name="uq_expected_returns_rma_line"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    rma: Mapped[str] = mapped_column(String(200))
    line: Mapped[int] = mapped_column(Integer)
    lpn: Mapped[str | None] = mapped_column(String(200), index=True)
    sku: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(200))
    price: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(500))
    days_since_sale: Mapped[int | None] = mapped_column(Integer)
    flags: Mapped[str] = mapped_column(Text)  # JSON list of item flags
    extra: Mapped[str] = mapped_column(Text)  # JSON object: the WMS's other fields, kept as sent
    request_hash: Mapped[str] = mapped_column(String(64))  # the same line sent again changes nothing
    source: Mapped[str] = mapped_column(String(32))  # api | import | lookup | demo
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LabelJobRow(Base):
    """A disposition label to print; a printer that is down never blocks a decision: the job waits and is retried."""

    __tablename__ = "label_jobs"
    __table_args__ = (Index("ix_label_jobs_due", "status", "next_attempt_at"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    inspection_id: Mapped[str] = mapped_column(String(36), ForeignKey("inspections.id"), index=True)
    decision_id: Mapped[str | None] = mapped_column(String(36))
    format: Mapped[str] = mapped_column(String(8))  # zpl | pdf
    size: Mapped[str] = mapped_column(String(16))  # 4x6 | 2x1
    printer: Mapped[str] = mapped_column(String(500))  # where it goes, as configured (no secrets)
    status: Mapped[str] = mapped_column(String(16))  # pending | printed | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    printed_at: Mapped[datetime | None]


class FlagRow(Base):
    """An operator's label flag on one view: a missed defect (maybe with a box) or a false one; appended only."""

    __tablename__ = "feedback_flags"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    inspection_id: Mapped[str] = mapped_column(String(36), ForeignKey("inspections.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))  # missed_defect | false_defect | anomaly
    view: Mapped[int] = mapped_column(Integer)
    detection: Mapped[int | None] = mapped_column(Integer)  # the flagged detection (false_defect)
    class_name: Mapped[str | None] = mapped_column(String(64))
    box: Mapped[str | None] = mapped_column(Text)  # JSON [x1, y1, x2, y2] in the view's pixels
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))  # who the client says acted
    key_id: Mapped[str | None] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(200))  # the key that wrote it, whatever the claim
    source: Mapped[str] = mapped_column(String(32))


__all__ = [
    "ApiKey",
    "Base",
    "DecisionRow",
    "DeliveryRow",
    "ExpectedReturnRow",
    "FlagRow",
    "IdempotencyRow",
    "ImageRow",
    "InspectionRow",
    "LabelJobRow",
    "OutboxRow",
    "PolicyRow",
    "UTCDateTime",
    "WebhookEndpointRow",
]
