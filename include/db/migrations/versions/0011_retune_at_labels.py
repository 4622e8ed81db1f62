"""The loop can fine-tune a dataset's encoder on its own: once the dataset has this many labeled
tasks, and again each time they double (NULL: never; see include.services.retune).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("retune_at_labels", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("datasets", "retune_at_labels")
