"""Privacy by default: a platform default policy, and a privacy decision on every dataset.

A dataset is decided when it has a policy, or a reason on record why it holds no personal data
(who and when beside it). Datasets from before have a decision when they have a policy; the
others wait for one, and no pipeline touches their texts until an admin decides.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_NAME = "Platform default"
# Frozen here (not imported): the structured entities as of this revision, each a placeholder.
DEFAULT_ENTITIES = {
    e: "placeholder" for e in ("PHONE", "ID_NUMBER", "BANK_CARD", "EMAIL", "IP_ADDRESS", "URL", "PASSPORT")
}


def upgrade() -> None:
    op.add_column(
        "pii_policies", sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_index(
        "uq_pii_policies_one_default",
        "pii_policies",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.add_column("datasets", sa.Column("pii_exempt_reason", sa.Text(), nullable=True))
    op.add_column("datasets", sa.Column("pii_decided_by", sa.Integer(), nullable=True))
    op.add_column("datasets", sa.Column("pii_decided_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_datasets_pii_decided_by_users"), "datasets", "users", ["pii_decided_by"], ["id"], ondelete="SET NULL"
    )
    op.execute(
        sa.text(
            "INSERT INTO pii_policies (name, entities, locale, use_llm, is_default, version) "
            "VALUES (:name, CAST(:entities AS jsonb), 'auto', false, true, 1) ON CONFLICT (name) DO NOTHING"
        ).bindparams(name=DEFAULT_NAME, entities=json.dumps(DEFAULT_ENTITIES))
    )
    op.execute(sa.text("UPDATE pii_policies SET is_default = true WHERE name = :name").bindparams(name=DEFAULT_NAME))


def downgrade() -> None:
    op.drop_constraint(op.f("fk_datasets_pii_decided_by_users"), "datasets", type_="foreignkey")
    op.drop_column("datasets", "pii_decided_at")
    op.drop_column("datasets", "pii_decided_by")
    op.drop_column("datasets", "pii_exempt_reason")
    op.drop_index("uq_pii_policies_one_default", table_name="pii_policies")
    op.drop_column("pii_policies", "is_default")
