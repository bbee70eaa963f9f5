"""learning and watching: routing model versions, announced hot spots, open-ticket
indexes for duplicate candidates

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import contact.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN_TICKET = "status NOT IN ('closed', 'merged')"
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, contact.models.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "routing_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("train_seconds", sa.Float(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_models")),
        sa.UniqueConstraint("version", name=op.f("uq_routing_models_version")),
    )
    op.create_table(
        "hotspot_alerts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_hotspot_alerts_service_id_services")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_hotspot_alerts_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotspot_alerts")),
        sa.UniqueConstraint("day", "service_id", "district_id", name="uq_hotspot_alerts_key"),
    )

    for column in ("district_id", "service_id"):
        name = f"ix_tickets_open_{column.removesuffix('_id')}"
        op.create_index(
            name,
            "tickets",
            [column, "created_at"],
            postgresql_where=sa.text(OPEN_TICKET),
            sqlite_where=sa.text(OPEN_TICKET),
        )


def downgrade() -> None:
    op.drop_index("ix_tickets_open_service", table_name="tickets")
    op.drop_index("ix_tickets_open_district", table_name="tickets")
    op.drop_table("hotspot_alerts")
    op.drop_table("routing_models")
