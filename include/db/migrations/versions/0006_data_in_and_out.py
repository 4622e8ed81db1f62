"""Data in and out: PII policies and mappings, the quality gate, overlap, snapshots, batch inference.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pii_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("entities", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("locale", sa.String(length=8), server_default="auto", nullable=False),
        sa.Column("use_llm", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pii_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_pii_policies_name")),
    )
    op.create_table(
        "quality_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("checks", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("thresholds", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("override_by", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_quality_reports_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["override_by"], ["users.id"], name=op.f("fk_quality_reports_override_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_reports")),
    )
    op.create_index(op.f("ix_quality_reports_dataset_id"), "quality_reports", ["dataset_id"], unique=False)
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("per_label", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("eval_version", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_snapshots_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("dataset_id", "content_hash", name="uq_snapshots_dataset_id_content_hash"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_snapshots_dataset_id"),
    )
    op.create_table(
        "pii_mappings",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("replacements", sa.Integer(), nullable=False),
        sa.Column("mapping", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_pii_mappings_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["pii_policies.id"], name=op.f("fk_pii_mappings_policy_id_pii_policies"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_pii_mappings")),
    )
    op.create_table(
        "pii_reveals",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.BigInteger(), nullable=True),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_pii_reveals_dataset_id_datasets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_pii_reveals_item_id_items"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pii_reveals_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pii_reveals")),
    )
    op.create_table(
        "snapshot_items",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("in_eval", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_items_snapshot_id_snapshots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "text_hash", name=op.f("pk_snapshot_items")),
    )
    op.create_table(
        "task_extra_assignees",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_extra_assignees_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_extra_assignees_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "user_id", name=op.f("pk_task_extra_assignees")),
    )
    op.create_index(op.f("ix_task_extra_assignees_user_id"), "task_extra_assignees", ["user_id"], unique=False)
    op.create_table(
        "inference_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_inference_runs_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_inference_runs_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_inference_runs_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_inference_runs_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inference_runs")),
    )
    op.create_table(
        "inference_inputs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["inference_runs.id"],
            name=op.f("fk_inference_inputs_run_id_inference_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "row", name=op.f("pk_inference_inputs")),
    )
    op.create_table(
        "inference_results",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("uncertainty", sa.Float(), nullable=False),
        sa.Column("probs", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["inference_runs.id"],
            name=op.f("fk_inference_results_run_id_inference_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "row", name=op.f("pk_inference_results")),
    )
    op.add_column("datasets", sa.Column("pii_policy_id", sa.Integer(), nullable=True))
    op.add_column(
        "datasets",
        sa.Column(
            "quality_thresholds",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.add_column("datasets", sa.Column("overlap_share", sa.Float(), server_default="0", nullable=False))
    op.create_foreign_key(
        op.f("fk_datasets_pii_policy_id_pii_policies"),
        "datasets",
        "pii_policies",
        ["pii_policy_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.add_column("experiments", sa.Column("snapshot_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_experiments_snapshot_id_snapshots"),
        "experiments",
        "snapshots",
        ["snapshot_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("items", sa.Column("pii_status", sa.String(length=16), server_default="none", nullable=False))


def downgrade() -> None:
    op.drop_column("items", "pii_status")
    op.drop_constraint(op.f("fk_experiments_snapshot_id_snapshots"), "experiments", type_="foreignkey")
    op.drop_column("experiments", "snapshot_id")
    op.drop_constraint(op.f("fk_datasets_pii_policy_id_pii_policies"), "datasets", type_="foreignkey")
    op.drop_column("datasets", "overlap_share")
    op.drop_column("datasets", "quality_thresholds")
    op.drop_column("datasets", "pii_policy_id")
    op.drop_table("inference_results")
    op.drop_table("inference_inputs")
    op.drop_table("inference_runs")
    op.drop_index(op.f("ix_task_extra_assignees_user_id"), table_name="task_extra_assignees")
    op.drop_table("task_extra_assignees")
    op.drop_table("snapshot_items")
    op.drop_table("pii_reveals")
    op.drop_table("pii_mappings")
    op.drop_table("snapshots")
    op.drop_index(op.f("ix_quality_reports_dataset_id"), table_name="quality_reports")
    op.drop_table("quality_reports")
    op.drop_table("pii_policies")
