"""tickets remember when a person chose or confirmed their service at dispatch

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contact.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column(
                "service_confirmed_at", contact.models.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("service_confirmed_at")
