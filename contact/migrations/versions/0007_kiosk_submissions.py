"""kiosk submissions: one row per report a kiosk handed in (idempotency, provisional reference)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contact.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, contact.models.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "kiosk_submissions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("provisional_reference", sa.String(length=21), nullable=True),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        _when("submitted_at", nullable=True),
        _when("received_at"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_kiosk_submissions_device_id_kiosk_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_kiosk_submissions_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_submissions")),
        sa.UniqueConstraint(
            "device_id", "key_hash", name=op.f("uq_kiosk_submissions_device_key")
        ),
        sa.UniqueConstraint(
            "provisional_reference", name=op.f("uq_kiosk_submissions_provisional_reference")
        ),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_kiosk_submissions_ticket_id")),
    )


def downgrade() -> None:
    op.drop_table("kiosk_submissions")
