"""Label reliability: labels the estimate calls likely mistakes (for review), and whether a
dataset trains on reliability-weighted labels.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("label_weights", sa.String(16), server_default="off", nullable=False))
    op.add_column("annotations", sa.Column("suspect", sa.Float(), nullable=True))
    op.create_index(
        "ix_annotations_suspect", "annotations", ["task_id"], postgresql_where=sa.text("suspect IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_annotations_suspect", table_name="annotations")
    op.drop_column("annotations", "suspect")
    op.drop_column("datasets", "label_weights")
