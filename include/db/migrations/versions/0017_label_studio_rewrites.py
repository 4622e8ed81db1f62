"""Tasks whose Label Studio data is older than the item's text (de-identified after import).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("ls_data_stale", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_index("ix_tasks_ls_data_stale", "tasks", ["dataset_id", "id"], postgresql_where=sa.text("ls_data_stale"))


def downgrade() -> None:
    op.drop_index("ix_tasks_ls_data_stale", table_name="tasks")
    op.drop_column("tasks", "ls_data_stale")
