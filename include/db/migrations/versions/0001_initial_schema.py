"""Initial schema: users, datasets, items, the tasks shadow index, annotations, jobs,
embeddings (pgvector), experiments and the model registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 17:43:04.888178
"""

from __future__ import annotations

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "embedding_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "backend",
            sa.Enum(
                "sentence_transformers",
                "openai",
                "ollama",
                name="embedding_backend",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("dimension > 0 AND dimension <= 2000", name=op.f("ck_embedding_models_dimension_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embedding_models")),
        sa.UniqueConstraint("name", name=op.f("uq_embedding_models_name")),
    )
    op.create_table(
        "ls_projects",
        sa.Column("ls_project_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("owned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("export_watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_export_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ls_project_id", name=op.f("pk_ls_projects")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "annotator", name="role", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("ls_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("labels", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("ls_project_id", sa.Integer(), nullable=True),
        sa.Column("ls_project_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("item_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_datasets_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "embeddings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["embedding_models.id"],
            name=op.f("fk_embeddings_model_id_embedding_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.UniqueConstraint("model_id", "text_hash", name="uq_embeddings_model_text_hash"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("embedding_model_id", sa.Integer(), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_val", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["embedding_model_id"],
            ["embedding_models.id"],
            name=op.f("fk_experiments_embedding_model_id_embedding_models"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_experiments_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(op.f("ix_experiments_dataset_id"), "experiments", ["dataset_id"], unique=False)
    op.create_table(
        "experiment_epochs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=False),
        sa.Column("val_loss", sa.Float(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_epochs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_epochs")),
        sa.UniqueConstraint("experiment_id", "epoch", name="uq_experiment_epochs_experiment_epoch"),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_items_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("dataset_id", "text_hash", name="uq_items_dataset_text_hash"),
    )
    op.create_index("ix_items_text_hash", "items", ["text_hash"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "success",
                "failed",
                "skipped",
                name="job_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("triggered_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_jobs_dataset_id_datasets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["triggered_by"], ["users.id"], name=op.f("fk_jobs_triggered_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dag_id", "run_id", "kind", name="uq_jobs_dag_run_kind"),
    )
    op.create_index(
        "ix_jobs_active", "jobs", ["status"], unique=False, postgresql_where=sa.text("status IN ('queued', 'running')")
    )
    op.create_index("ix_jobs_created_at", "jobs", [sa.literal_column("created_at DESC")], unique=False)
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "candidate",
                "promoted",
                "rejected",
                "retired",
                name="model_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("embedding_model_id", sa.Integer(), nullable=False),
        sa.Column("labels", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["embedding_model_id"],
            ["embedding_models.id"],
            name=op.f("fk_models_embedding_model_id_embedding_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_models_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_models_experiment_id_experiments"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("version", name=op.f("uq_models_version")),
    )
    op.create_index(
        "uq_models_one_promoted",
        "models",
        ["dataset_id", "embedding_model_id"],
        unique=True,
        postgresql_where=sa.text("status = 'promoted'"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("ls_project_id", sa.Integer(), nullable=False),
        sa.Column("ls_task_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "imported",
                "assigned",
                "labeled",
                "conflict",
                "deleted",
                name="task_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="imported",
            nullable=False,
        ),
        sa.Column("assigned_to", sa.Integer(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("labeled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prelabel_label", sa.String(length=64), nullable=True),
        sa.Column("prelabel_score", sa.Float(), nullable=True),
        sa.Column("prelabel_json", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("model_prob", sa.Float(), nullable=True),
        sa.Column("uncertainty_score", sa.Float(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ls_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("priority >= 0 AND priority <= 1000", name=op.f("ck_tasks_priority_range")),
        sa.ForeignKeyConstraint(
            ["assigned_to"], ["users.id"], name=op.f("fk_tasks_assigned_to_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_tasks_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_tasks_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("item_id", name=op.f("uq_tasks_item_id")),
        sa.UniqueConstraint("ls_task_id", name=op.f("uq_tasks_ls_task_id")),
    )
    # Partial: tasks enter unassigned, so imports do not pay for these indexes.
    op.create_index(
        "ix_tasks_assignee_priority",
        "tasks",
        ["assigned_to", sa.literal_column("priority DESC"), "id"],
        unique=False,
        postgresql_where=sa.text("assigned_to IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_assignee_status_priority",
        "tasks",
        ["assigned_to", "status", sa.literal_column("priority DESC"), "id"],
        unique=False,
        postgresql_where=sa.text("assigned_to IS NOT NULL"),
    )
    op.create_index("ix_tasks_dataset_status", "tasks", ["dataset_id", "status"], unique=False)
    op.create_index("ix_tasks_ls_project_task", "tasks", ["ls_project_id", "ls_task_id"], unique=False)
    op.create_index(
        "ix_tasks_unassigned_queue",
        "tasks",
        ["dataset_id", sa.literal_column("priority DESC"), "id"],
        unique=False,
        postgresql_where=sa.text("assigned_to IS NULL AND status = 'imported'"),
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("annotator_id", sa.Integer(), nullable=True),
        sa.Column("ls_annotation_id", sa.BigInteger(), nullable=True),
        sa.Column("ls_user_email", sa.String(length=255), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("was_cancelled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("ground_truth", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "labelstudio", "webapp", name="annotation_source", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["users.id"], name=op.f("fk_annotations_annotator_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_annotations_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotations")),
        sa.UniqueConstraint("ls_annotation_id", name=op.f("uq_annotations_ls_annotation_id")),
    )
    op.create_index(op.f("ix_annotations_annotator_id"), "annotations", ["annotator_id"], unique=False)
    op.create_index(op.f("ix_annotations_task_id"), "annotations", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_annotations_task_id"), table_name="annotations")
    op.drop_index(op.f("ix_annotations_annotator_id"), table_name="annotations")
    op.drop_table("annotations")
    op.drop_index(
        "ix_tasks_unassigned_queue",
        table_name="tasks",
        postgresql_where=sa.text("assigned_to IS NULL AND status = 'imported'"),
    )
    op.drop_index("ix_tasks_ls_project_task", table_name="tasks")
    op.drop_index("ix_tasks_dataset_status", table_name="tasks")
    op.drop_index(
        "ix_tasks_assignee_status_priority", table_name="tasks", postgresql_where=sa.text("assigned_to IS NOT NULL")
    )
    op.drop_index("ix_tasks_assignee_priority", table_name="tasks", postgresql_where=sa.text("assigned_to IS NOT NULL"))
    op.drop_table("tasks")
    op.drop_index("uq_models_one_promoted", table_name="models", postgresql_where=sa.text("status = 'promoted'"))
    op.drop_table("models")
    op.drop_index("ix_jobs_created_at", table_name="jobs")
    op.drop_index("ix_jobs_active", table_name="jobs", postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.drop_table("jobs")
    op.drop_index("ix_items_text_hash", table_name="items")
    op.drop_table("items")
    op.drop_table("experiment_epochs")
    op.drop_index(op.f("ix_experiments_dataset_id"), table_name="experiments")
    op.drop_table("experiments")
    op.drop_table("embeddings")
    op.drop_table("datasets")
    op.drop_table("users")
    op.drop_table("ls_projects")
    op.drop_table("embedding_models")
    op.execute("DROP EXTENSION IF EXISTS vector")
