"""How long an annotator took for a label: seconds from opening the task to pressing a label
(Label Studio's own ``lead_time``, which the platform sends with each annotation).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("annotations", sa.Column("lead_time", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("annotations", "lead_time")
