"""Label Studio's identity: which instance and which projects the platform's tasks live in; task
and annotation ids unique per project and task (a new instance numbers them from 1 again).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ls_instances",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("organization_created_at", sa.Text(), nullable=False),
        sa.Column("recorded_at", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen_at", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ls_instances_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ls_instances")),
    )
    op.add_column("ls_projects", sa.Column("ls_created_at", sa.Text(), nullable=True))
    op.drop_constraint("uq_tasks_ls_task_id", "tasks", type_="unique")
    op.drop_index("ix_tasks_ls_project_task", table_name="tasks")
    op.create_unique_constraint("uq_tasks_ls_project_task", "tasks", ["ls_project_id", "ls_task_id"])
    op.drop_constraint("uq_annotations_ls_annotation_id", "annotations", type_="unique")
    op.create_unique_constraint("uq_annotations_task_ls_annotation", "annotations", ["task_id", "ls_annotation_id"])


def downgrade() -> None:
    op.drop_constraint("uq_annotations_task_ls_annotation", "annotations", type_="unique")
    op.create_unique_constraint("uq_annotations_ls_annotation_id", "annotations", ["ls_annotation_id"])
    op.drop_constraint("uq_tasks_ls_project_task", "tasks", type_="unique")
    op.create_index("ix_tasks_ls_project_task", "tasks", ["ls_project_id", "ls_task_id"])
    op.create_unique_constraint("uq_tasks_ls_task_id", "tasks", ["ls_task_id"])
    op.drop_column("ls_projects", "ls_created_at")
    op.drop_table("ls_instances")
