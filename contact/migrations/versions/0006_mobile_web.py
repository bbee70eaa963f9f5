"""the citizens' mobile web: service forms, report drafts, phone codes, lookup limits

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import contact.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, contact.models.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "service_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_service_forms_service_id_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_forms")),
    )
    with op.batch_alter_table("service_forms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_forms_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "web_drafts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=True),
        _when("created_at"),
        _when("updated_at"),
        _when("expires_at"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_web_drafts_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_drafts")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_drafts_token_hash")),
    )
    with op.batch_alter_table("web_drafts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_drafts_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "phone_codes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("draft_id", BIG_ID, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tries", sa.SmallInteger(), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("used_at", nullable=True),
        sa.CheckConstraint("tries >= 0", name=op.f("ck_phone_codes_tries")),
        sa.ForeignKeyConstraint(
            ["draft_id"], ["web_drafts.id"], name=op.f("fk_phone_codes_draft_id_web_drafts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_codes")),
    )
    with op.batch_alter_table("phone_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_codes_draft_id"), ["draft_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_phone_codes_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "web_limits",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        _when("reset_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_web_limits")),
    )
    with op.batch_alter_table("web_limits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_limits_reset_at"), ["reset_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_limits_reset_at"))
    op.drop_table("web_limits")
    with op.batch_alter_table("phone_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_codes_expires_at"))
        batch_op.drop_index(batch_op.f("ix_phone_codes_draft_id"))
    op.drop_table("phone_codes")
    with op.batch_alter_table("web_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_drafts_expires_at"))
    op.drop_table("web_drafts")
    with op.batch_alter_table("service_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_forms_service_id"))
    op.drop_table("service_forms")
