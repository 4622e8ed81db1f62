"""Job rows per map index, and a pipeline-level row distinct from its steps.

A mapped step (the nightly loop over datasets, a sweep's trials) had one row for all its map
indexes: one dataset's failure was overwritten by another's success. And the row a trigger
queued for a run was adopted by the run's first step when they shared a name
(train_classifier, embed_items...), so the run read success before its gate had run.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False))
    op.add_column("jobs", sa.Column("kind", sa.String(8), server_default="step", nullable=False))
    op.create_check_constraint("ck_jobs_kind", "jobs", "kind IN ('run', 'step')")
    op.execute("UPDATE jobs SET kind = 'run' WHERE status = 'queued'")  # queued rows stand for runs
    op.drop_constraint("uq_jobs_dag_run_step", "jobs", type_="unique")
    op.create_unique_constraint("uq_jobs_dag_run_step_map", "jobs", ["dag_id", "run_id", "step", "map_index", "kind"])


def downgrade() -> None:
    op.drop_constraint("uq_jobs_dag_run_step_map", "jobs", type_="unique")
    op.execute(
        "DELETE FROM jobs j USING jobs o WHERE j.dag_id = o.dag_id AND j.run_id = o.run_id AND j.step = o.step"
        " AND (j.map_index, j.kind, j.id) > (o.map_index, o.kind, o.id)"
    )
    op.create_unique_constraint("uq_jobs_dag_run_step", "jobs", ["dag_id", "run_id", "step"])
    op.drop_constraint("ck_jobs_kind", "jobs", type_="check")
    op.drop_column("jobs", "kind")
    op.drop_column("jobs", "map_index")
