"""Labeling guidelines: versioned per dataset, the version each label was given under, and the
version Label Studio's project shows as its instruction.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guideline_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("label_descriptions", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_guideline_versions_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_guideline_versions_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guideline_versions")),
        sa.UniqueConstraint("dataset_id", "version", name="uq_guideline_versions_dataset_version"),
    )
    op.add_column("datasets", sa.Column("guidelines", sa.Text(), server_default="", nullable=False))
    op.add_column("datasets", sa.Column("guidelines_version", sa.Integer(), server_default="0", nullable=False))
    op.add_column("annotations", sa.Column("guidelines_version", sa.Integer(), nullable=True))
    op.add_column("ls_projects", sa.Column("instruction_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("ls_projects", "instruction_version")
    op.drop_column("annotations", "guidelines_version")
    op.drop_column("datasets", "guidelines_version")
    op.drop_column("datasets", "guidelines")
    op.drop_table("guideline_versions")
