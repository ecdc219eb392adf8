"""expected returns and disposition labels

- ``expected_returns``: what the WMS says is coming back, one row per RMA line
  (an RMA may hold several items, each with its LPN); idempotent by RMA + line,
  expiring after a configured time.
- ``inspections.return_line``: which line of the RMA the inspection was.
- ``inspections.category``: 200 characters, for the retailer's own category names.
- ``label_jobs``: a disposition label to print; a printer that is down never
  blocks a decision, the job waits here and is retried.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "expected_returns",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("rma", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("lpn", sa.String(length=200), nullable=True),
        sa.Column("sku", sa.String(length=200), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("days_since_sale", sa.Integer(), nullable=True),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("rma", "line", name="uq_expected_returns_rma_line"),
    )
    op.create_index("ix_expected_returns_lpn", "expected_returns", ["lpn"], unique=False)
    op.create_index("ix_expected_returns_expires_at", "expected_returns", ["expires_at"], unique=False)
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("return_line", sa.Integer(), nullable=True))
        # the retailer's own category names (electronics/phones/android) are longer than the eight families
        batch.alter_column("category", existing_type=sa.String(length=32), type_=sa.String(length=200))
    op.create_table(
        "label_jobs",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("inspection_id", sa.String(length=36), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("size", sa.String(length=16), nullable=False),
        sa.Column("printer", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("printed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspections.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_label_jobs_due", "label_jobs", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_label_jobs_inspection_id", "label_jobs", ["inspection_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_label_jobs_inspection_id", table_name="label_jobs")
    op.drop_index("ix_label_jobs_due", table_name="label_jobs")
    op.drop_table("label_jobs")
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("return_line")
        batch.alter_column("category", existing_type=sa.String(length=200), type_=sa.String(length=32))
    op.drop_index("ix_expected_returns_expires_at", table_name="expected_returns")
    op.drop_index("ix_expected_returns_lpn", table_name="expected_returns")
    op.drop_table("expected_returns")
