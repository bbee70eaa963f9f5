"""a routing model version may also hold a service model

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routing_models") as batch:
        batch.add_column(sa.Column("service_blob", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routing_models") as batch:
        batch.drop_column("service_blob")
