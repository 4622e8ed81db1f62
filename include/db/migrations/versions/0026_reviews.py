"""The review stage and what counts: a reviewer role, verdicts on annotations (kept for good),
what each task's label rests on, and which labels may train or judge models.

Existing datasets keep today's behaviour (any label trains and judges); datasets created from
now on ask for agreed or reviewed labels in their evaluation set.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSTZ = sa.DateTime(timezone=True)
VERDICTS = "'accepted', 'fixed', 'rejected'"
QUEUE = "review IS NULL AND label IS NOT NULL AND NOT was_cancelled AND NOT ground_truth"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", "role IN ('admin', 'annotator', 'reviewer')")
    op.add_column("datasets", sa.Column("train_labels", sa.String(24), server_default="any", nullable=False))
    op.add_column("datasets", sa.Column("eval_labels", sa.String(24), server_default="any", nullable=False))
    op.alter_column("datasets", "eval_labels", server_default="agreed_or_reviewed")
    op.add_column("tasks", sa.Column("label_basis", sa.String(16), nullable=True))
    op.add_column("snapshot_items", sa.Column("basis", sa.String(16), nullable=True))
    op.add_column("annotations", sa.Column("review", sa.String(16), nullable=True))
    op.add_column("annotations", sa.Column("reviewed_label", sa.String(64), nullable=True))
    op.add_column("annotations", sa.Column("reviewed_by", sa.Integer(), nullable=True))
    op.add_column("annotations", sa.Column("reviewed_at", TSTZ, nullable=True))
    op.create_foreign_key(
        op.f("fk_annotations_reviewed_by_users"), "annotations", "users", ["reviewed_by"], ["id"], ondelete="SET NULL"
    )
    op.create_check_constraint(op.f("ck_annotations_review"), "annotations", f"review IN ({VERDICTS})")
    op.create_index("ix_annotations_review_queue", "annotations", ["id"], postgresql_where=sa.text(QUEUE))
    op.create_index(
        "ix_annotations_returned", "annotations", ["annotator_id"], postgresql_where=sa.text("review = 'rejected'")
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("annotation_id", sa.BigInteger(), nullable=True),
        sa.Column("annotator_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("label_before", sa.String(64), nullable=False),
        sa.Column("label_after", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"verdict IN ({VERDICTS})", name=op.f("ck_reviews_verdict")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_reviews_task_id_tasks"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["annotation_id"],
            ["annotations.id"],
            name=op.f("fk_reviews_annotation_id_annotations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_reviews_annotator_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_reviews_reviewer_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index("ix_reviews_task_id", "reviews", ["task_id"])
    op.create_index("ix_reviews_annotation_id", "reviews", ["annotation_id"])
    op.create_index("ix_reviews_annotator_created", "reviews", ["annotator_id", "created_at"])
    op.create_index("ix_reviews_reviewer_created", "reviews", ["reviewer_id", "created_at"])
    # What the labels of existing tasks rest on: an admin's resolution, agreement, or one annotator.
    op.execute(
        """
        UPDATE tasks t SET label_basis = CASE
            WHEN EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = t.id AND a.ground_truth
                         AND NOT a.was_cancelled AND a.label IS NOT NULL) THEN 'reviewed'
            WHEN (SELECT count(DISTINCT coalesce(a.annotator_id::text, a.ls_user_email)) FROM annotations a
                  WHERE a.task_id = t.id AND a.label = t.label
                  AND NOT a.was_cancelled AND NOT a.ground_truth) >= 2 THEN 'agreed'
            ELSE 'single' END
        WHERE t.status = 'labeled'
        """
    )


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_index("ix_annotations_returned", table_name="annotations")
    op.drop_index("ix_annotations_review_queue", table_name="annotations")
    op.drop_constraint(op.f("ck_annotations_review"), "annotations", type_="check")
    op.drop_constraint(op.f("fk_annotations_reviewed_by_users"), "annotations", type_="foreignkey")
    for column in ("reviewed_at", "reviewed_by", "reviewed_label", "review"):
        op.drop_column("annotations", column)
    op.drop_column("snapshot_items", "basis")
    op.drop_column("tasks", "label_basis")
    op.drop_column("datasets", "eval_labels")
    op.drop_column("datasets", "train_labels")
    op.execute("UPDATE users SET role = 'annotator' WHERE role = 'reviewer'")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", "role IN ('admin', 'annotator')")
