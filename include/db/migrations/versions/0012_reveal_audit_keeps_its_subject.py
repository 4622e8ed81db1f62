"""A reveal's audit row keeps what was revealed: the dataset and item ids stay when the dataset
or item is deleted (no foreign key that nulls them), with the dataset's name and the username
as they were at the time.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("fk_pii_reveals_dataset_id_datasets"), "pii_reveals", type_="foreignkey")
    op.drop_constraint(op.f("fk_pii_reveals_item_id_items"), "pii_reveals", type_="foreignkey")
    op.add_column("pii_reveals", sa.Column("dataset_name", sa.String(128), nullable=False, server_default=""))
    op.add_column("pii_reveals", sa.Column("username", sa.String(64), nullable=False, server_default=""))
    op.execute("UPDATE pii_reveals r SET dataset_name = d.name FROM datasets d WHERE d.id = r.dataset_id")
    op.execute("UPDATE pii_reveals r SET username = u.username FROM users u WHERE u.id = r.user_id")


def downgrade() -> None:
    op.drop_column("pii_reveals", "username")
    op.drop_column("pii_reveals", "dataset_name")
    op.execute("UPDATE pii_reveals SET item_id = NULL WHERE item_id NOT IN (SELECT id FROM items)")
    op.execute("UPDATE pii_reveals SET dataset_id = NULL WHERE dataset_id NOT IN (SELECT id FROM datasets)")
    op.create_foreign_key(
        op.f("fk_pii_reveals_item_id_items"), "pii_reveals", "items", ["item_id"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        op.f("fk_pii_reveals_dataset_id_datasets"),
        "pii_reveals",
        "datasets",
        ["dataset_id"],
        ["id"],
        ondelete="SET NULL",
    )
