"""Trained heads in the registry row (models.artifact), so no worker needs a shared disk.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("models", sa.Column("artifact", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("models", "artifact")
