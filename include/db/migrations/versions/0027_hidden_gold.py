"""Hidden gold: gold checks in annotators' queues, their answers (apart from labels), and alerts.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("datasets", sa.Column("gold_share", sa.Float(), server_default="0.05", nullable=False))
    op.add_column("datasets", sa.Column("gold_threshold", sa.Float(), server_default="0.8", nullable=False))
    op.add_column(
        "task_extra_assignees", sa.Column("gold", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_table(
        "gold_answers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("expected", sa.String(64), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("lead_time", sa.Float(), nullable=True),
        sa.Column("created_at", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_gold_answers_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_gold_answers_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_gold_answers_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_answers")),
        sa.UniqueConstraint("task_id", "user_id", name="uq_gold_answers_task_user"),
    )
    op.create_index("ix_gold_answers_dataset_id", "gold_answers", ["dataset_id"])
    op.create_index("ix_gold_answers_user_created", "gold_answers", ["user_id", "created_at"])
    op.create_table(
        "gold_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("raised_at", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("cleared_at", TSTZ, nullable=True),
        sa.Column("cleared_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_gold_alerts_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_gold_alerts_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cleared_by"], ["users.id"], name=op.f("fk_gold_alerts_cleared_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_alerts")),
    )
    op.create_index(
        "ix_gold_alerts_open", "gold_alerts", ["dataset_id", "user_id"], postgresql_where=sa.text("cleared_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("gold_alerts")
    op.drop_table("gold_answers")
    op.drop_column("task_extra_assignees", "gold")
    op.drop_column("datasets", "gold_threshold")
    op.drop_column("datasets", "gold_share")
