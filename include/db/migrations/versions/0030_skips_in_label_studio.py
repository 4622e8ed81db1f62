"""Skips reach Label Studio: an outbox entry may carry a skipped (cancelled) annotation.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("label_outbox", sa.Column("cancelled", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    op.execute("DELETE FROM label_outbox WHERE cancelled")
    op.drop_column("label_outbox", "cancelled")
