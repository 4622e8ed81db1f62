"""Fine-tuned encoders: an embedding model can carry its own weights (a fine-tuned sentence
encoder, stored in the database so every worker can load it without a shared disk) and say
where it came from. And the live loop's signal keeps which export run sent it and when a loop
picked it up, so a signal that never reached Airflow is sent again.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("live_loop_signal_run", sa.String(length=250), nullable=True))
    op.add_column("datasets", sa.Column("live_loop_started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("embedding_models", sa.Column("artifact", sa.LargeBinary(), nullable=True))
    op.add_column("embedding_models", sa.Column("artifact_sha256", sa.String(length=64), nullable=True))
    op.add_column(
        "embedding_models",
        sa.Column("origin", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    )
    op.add_column("embedding_models", sa.Column("dataset_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_embedding_models_dataset_id_datasets"),
        "embedding_models",
        "datasets",
        ["dataset_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_embedding_models_dataset_id_datasets"), "embedding_models", type_="foreignkey")
    op.drop_column("embedding_models", "dataset_id")
    op.drop_column("embedding_models", "origin")
    op.drop_column("embedding_models", "artifact_sha256")
    op.drop_column("embedding_models", "artifact")
    op.drop_column("datasets", "live_loop_started_at")
    op.drop_column("datasets", "live_loop_signal_run")
