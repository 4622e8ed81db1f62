"""Evaluation sets, training lineage, evaluation reports, gate records and LLM baselines.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_items",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("excluded", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_eval_items_added_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_eval_items_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("dataset_id", "text_hash", name=op.f("pk_eval_items")),
    )
    op.create_table(
        "experiment_items",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("split", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_items_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "text_hash", name=op.f("pk_experiment_items")),
    )
    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("eval_version", sa.String(length=32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("macro_f1", sa.Float(), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_evaluations_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_evaluations")),
        sa.UniqueConstraint("model_id", "eval_version", name="uq_model_evaluations_model_id"),
    )
    op.create_index(op.f("ix_model_evaluations_model_id"), "model_evaluations", ["model_id"], unique=False)
    op.add_column("datasets", sa.Column("eval_fraction", sa.Float(), server_default="0.2", nullable=False))
    op.add_column("datasets", sa.Column("eval_min_per_label", sa.Integer(), server_default="10", nullable=False))
    op.add_column("datasets", sa.Column("eval_cap", sa.Integer(), server_default="1000", nullable=False))
    op.add_column(
        "models",
        sa.Column("gate", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    )
    op.alter_column("models", "embedding_model_id", existing_type=sa.INTEGER(), nullable=True)
    op.add_column("tasks", sa.Column("first_trained_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f("ck_models_model_status"), "models", type_="check")
    op.create_check_constraint(
        op.f("ck_models_model_status"),
        "models",
        "status IN ('candidate', 'promoted', 'rejected', 'retired', 'baseline')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM models WHERE status = 'baseline'")
    op.drop_constraint(op.f("ck_models_model_status"), "models", type_="check")
    op.create_check_constraint(
        op.f("ck_models_model_status"), "models", "status IN ('candidate', 'promoted', 'rejected', 'retired')"
    )
    op.drop_column("tasks", "first_trained_at")
    op.alter_column("models", "embedding_model_id", existing_type=sa.INTEGER(), nullable=False)
    op.drop_column("models", "gate")
    op.drop_column("datasets", "eval_cap")
    op.drop_column("datasets", "eval_min_per_label")
    op.drop_column("datasets", "eval_fraction")
    op.drop_index(op.f("ix_model_evaluations_model_id"), table_name="model_evaluations")
    op.drop_table("model_evaluations")
    op.drop_table("experiment_items")
    op.drop_table("eval_items")
