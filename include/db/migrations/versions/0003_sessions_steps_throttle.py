"""Session generations, label descriptions, jobs.kind -> jobs.step, shared login throttling.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "datasets",
        sa.Column(
            "label_descriptions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.alter_column("jobs", "kind", new_column_name="step")
    op.drop_constraint("uq_jobs_dag_run_kind", "jobs", type_="unique")
    op.create_unique_constraint("uq_jobs_dag_run_step", "jobs", ["dag_id", "run_id", "step"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_constraint("uq_jobs_dag_run_step", "jobs", type_="unique")
    op.alter_column("jobs", "step", new_column_name="kind")
    op.create_unique_constraint("uq_jobs_dag_run_kind", "jobs", ["dag_id", "run_id", "kind"])
    op.drop_column("datasets", "label_descriptions")
    op.drop_column("users", "session_generation")
