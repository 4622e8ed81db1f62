"""Why an item is still pending de-identification: the LLM recognizer fails closed and says why.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("items", sa.Column("pii_note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("items", "pii_note")
