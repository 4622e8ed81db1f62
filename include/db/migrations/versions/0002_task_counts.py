"""Task counters for O(1) statistics, maintained by statement-level triggers on tasks.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = "dataset_id, coalesce(assigned_to, 0), status, coalesce(label, '')"

# One aggregated upsert per statement (not per row); ORDER BY fixes the lock order so
# concurrent statements touching the same counters cannot deadlock.
_FUNCTIONS = {
    "insert": f"SELECT {_KEY}, count(*) FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    "delete": f"SELECT {_KEY}, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    "update": (
        f"SELECT k1, k2, k3, k4, sum(d) FROM ("
        f"SELECT {_KEY}, 1 FROM new_rows UNION ALL SELECT {_KEY}, -1 FROM old_rows"
        f") AS delta(k1, k2, k3, k4, d) GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4"
    ),
}
_REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "assignee_id", "status", "label", name=op.f("pk_task_counts")),
    )
    for event, select in _FUNCTIONS.items():
        op.execute(
            f"""
            CREATE FUNCTION task_counts_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO task_counts AS c (dataset_id, assignee_id, status, label, n)
                {select}
                ON CONFLICT (dataset_id, assignee_id, status, label) DO UPDATE SET n = c.n + excluded.n;
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER tasks_count_{event} AFTER {event.upper()} ON tasks {_REFERENCING[event]} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION task_counts_{event}()"
        )
    op.execute(
        "CREATE FUNCTION task_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM task_counts; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER tasks_count_truncate AFTER TRUNCATE ON tasks "
        "FOR EACH STATEMENT EXECUTE FUNCTION task_counts_truncate()"
    )
    # Backfill from existing rows.
    op.execute(
        f"INSERT INTO task_counts (dataset_id, assignee_id, status, label, n) "
        f"SELECT {_KEY}, count(*) FROM tasks GROUP BY 1, 2, 3, 4"
    )
    # An annotator's labels of today (the "today" figure) without scanning their task list.
    op.create_index(
        "ix_tasks_assignee_labeled_at",
        "tasks",
        ["assigned_to", "labeled_at"],
        postgresql_where=sa.text("assigned_to IS NOT NULL AND labeled_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_assignee_labeled_at", table_name="tasks")
    for event in (*_FUNCTIONS, "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS tasks_count_{event} ON tasks")
        op.execute(f"DROP FUNCTION IF EXISTS task_counts_{event}()")
    op.drop_table("task_counts")
