"""Webhook echoes and coalesced exports: Label Studio's webhooks for annotations the platform
wrote itself start nothing, and a dataset has at most one export waiting to start.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ls_echoes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("ls_project_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ls_echoes_project", "ls_echoes", ["ls_project_id", "id"])
    op.add_column("ls_webhooks", sa.Column("echo", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("ls_webhooks", sa.Column("coalesced", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("datasets", sa.Column("export_signalled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("datasets", sa.Column("export_started_at", sa.DateTime(timezone=True), nullable=True))
    # The lag shown on every admin page and /healthz reads only entries not yet sent, and the
    # delivery rate only the last minute's: neither scans the month of sent entries kept.
    op.create_index("ix_label_outbox_open", "label_outbox", ["user_id"], postgresql_where=sa.text("status <> 'sent'"))
    op.create_index("ix_label_outbox_sent_at", "label_outbox", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_label_outbox_sent_at", table_name="label_outbox")
    op.drop_index("ix_label_outbox_open", table_name="label_outbox")
    op.drop_column("datasets", "export_started_at")
    op.drop_column("datasets", "export_signalled_at")
    op.drop_column("ls_webhooks", "coalesced")
    op.drop_column("ls_webhooks", "echo")
    op.drop_index("ix_ls_echoes_project", table_name="ls_echoes")
    op.drop_table("ls_echoes")
