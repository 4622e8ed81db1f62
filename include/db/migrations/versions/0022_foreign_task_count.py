"""How many tasks of each Label Studio project are not the platform's (made by hand there).

Deleted tasks are found by comparing task counts; without knowing how many tasks are someone
else's, a project with hand-made tasks hid every deletion of the platform's own.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ls_projects", sa.Column("foreign_tasks", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("ls_projects", "foreign_tasks")
