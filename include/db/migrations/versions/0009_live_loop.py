"""The live loop: Label Studio webhooks on record, and when a dataset retrains on its own.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ls_webhooks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("ls_project_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("signalled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_ls_webhooks_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ls_webhooks")),
        sa.UniqueConstraint("body_sha256", name=op.f("uq_ls_webhooks_body_sha256")),
    )
    op.create_index(
        "ix_ls_webhooks_pending",
        "ls_webhooks",
        ["next_attempt_at"],
        postgresql_where=sa.text("signalled_at IS NULL"),
    )
    op.add_column("datasets", sa.Column("retrain_after_labels", sa.Integer(), server_default="50", nullable=True))
    op.add_column("datasets", sa.Column("live_loop_signalled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("datasets", "live_loop_signalled_at")
    op.drop_column("datasets", "retrain_after_labels")
    op.drop_index("ix_ls_webhooks_pending", table_name="ls_webhooks")
    op.drop_table("ls_webhooks")
