"""tickets remember the routing model's version and the service intake gave them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("routing_version", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column(
                "routing_service_id",
                sa.Integer(),
                sa.ForeignKey("services.id", name=op.f("fk_tickets_routing_service_id_services")),
                nullable=True,
            )
        )
    # Until now a ticket's service changed only by a dispatcher's choice, which came in
    # the same release: the service a ticket has is the one intake gave it. The version
    # is not recoverable from the stored reason alone; those tickets count as the model's
    # without one.
    op.execute("UPDATE tickets SET routing_service_id = service_id")


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("routing_service_id")
        batch.drop_column("routing_version")
