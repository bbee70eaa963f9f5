"""index the inbound texts waiting for an answer

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The sweeper looks for texts still 'received'; they are few among millions of messages.
    op.create_index(
        "ix_messages_due_texts",
        "messages",
        ["created_at"],
        postgresql_where=sa.text("status = 'received' AND direction = 'in'"),
        sqlite_where=sa.text("status = 'received' AND direction = 'in'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_due_texts", table_name="messages")
