"""Backfill ``tasks.first_trained_at`` from the experiments' lineage.

Databases upgraded across 0005 never had it set for the texts trained before: those texts could
join the evaluation set and judge the models that learned them. Every text an experiment of the
dataset trained or validated on is marked trained at that experiment's start.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE tasks t SET first_trained_at = first.started_at
        FROM (
            SELECT i.id AS item_id, min(e.started_at) AS started_at
            FROM experiment_items ei
            JOIN experiments e ON e.id = ei.experiment_id
            JOIN items i ON i.dataset_id = e.dataset_id AND i.text_hash = ei.text_hash
            GROUP BY i.id
        ) AS first
        WHERE t.item_id = first.item_id AND t.first_trained_at IS NULL
        """
    )


def downgrade() -> None:
    """Nothing to undo: the marks are true facts about the lineage."""
