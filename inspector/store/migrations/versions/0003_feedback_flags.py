"""feedback flags: an operator marks a missed or a false defect on a view

Flags are label candidates for the next training round; they never change the
inspection or its decisions, and like decisions they are only ever appended.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_flags",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("inspection_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("view", sa.Integer(), nullable=False),
        sa.Column("detection", sa.Integer(), nullable=True),
        sa.Column("class_name", sa.String(length=64), nullable=True),
        sa.Column("box", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspections.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_feedback_flags_inspection_id", "feedback_flags", ["inspection_id"], unique=False)
    op.create_index("ix_feedback_flags_created_at", "feedback_flags", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feedback_flags_created_at", table_name="feedback_flags")
    op.drop_index("ix_feedback_flags_inspection_id", table_name="feedback_flags")
    op.drop_table("feedback_flags")
