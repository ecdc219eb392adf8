"""fleet: inspections by station, webhook leases owned by a worker

Several stations share one database: listing by station needs an index, and a
delivery lease records which worker holds it, so that only the holder records
the attempt and a lease taken over after expiry is never recorded twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.create_index("ix_inspections_station_id", ["station_id", "seq"], unique=False)
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("leased_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("leased_by")
    with op.batch_alter_table("inspections") as batch:
        batch.drop_index("ix_inspections_station_id")
