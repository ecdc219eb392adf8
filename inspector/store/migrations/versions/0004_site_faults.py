"""site faults: who acted, failing receivers, pruned images

- ``decisions.key_name`` and ``feedback_flags.key_name``: the name of the API key
  that wrote the row, beside the ``actor`` the client claims.
- ``webhook_endpoints.failing_since`` and ``disabled_reason``: a receiver that
  has failed without a success since then is disabled after a stated time, and
  says why.
- ``inspections.images_pruned_at``: the retention policy removed the views of an
  old inspection; its record stays.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("key_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("feedback_flags") as batch:
        batch.add_column(sa.Column("key_name", sa.String(length=200), nullable=True))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("images_pruned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("images_pruned_at")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("disabled_reason")
        batch.drop_column("failing_since")
    with op.batch_alter_table("feedback_flags") as batch:
        batch.drop_column("key_name")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("key_name")
