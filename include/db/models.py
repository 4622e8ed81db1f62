"""Platform tables. Alembic (include/db/migrations) is the only thing that creates them.

The ``tasks`` table is the shadow index of Label Studio tasks: Label Studio stays the source of
truth for labels, the platform keeps assignment, status, predictions and priority next to it
for permissions, statistics and ordering.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from include.db.base import Base


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR + CHECK enum: easier to extend in a migration than a native PG enum."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    ADMIN = "admin"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"  # checks submitted labels (include.services.review); an admin can too


class TaskStatus(enum.StrEnum):
    IMPORTED = "imported"
    ASSIGNED = "assigned"
    LABELED = "labeled"
    CONFLICT = "conflict"
    DELETED = "deleted"  # the task was deleted in Label Studio


class AnnotationSource(enum.StrEnum):
    LABELSTUDIO = "labelstudio"
    WEBAPP = "webapp"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to do: the step ended cleanly without work


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # to be written to Label Studio (again, after a failed try)
    SENT = "sent"  # Label Studio has it; ls_annotation_id says which annotation
    DEAD = "dead"  # cannot be delivered (the task was deleted in Label Studio); last_error says why


class AttemptState(enum.StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"


class ModelStatus(enum.StrEnum):
    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    RETIRED = "retired"  # was promoted, replaced by a better model
    BASELINE = "baseline"  # an LLM asked zero-shot: a yardstick, never serving predictions


class EmbeddingBackend(enum.StrEnum):
    SENTENCE_TRANSFORMERS = "sentence_transformers"
    OPENAI = "openai"
    OLLAMA = "ollama"


TSTZ = DateTime(timezone=True)


class User(Base):
    """A person who logs into the web app. Duck-types flask-login's user interface."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.ANNOTATOR)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_text("true"))
    ls_user_id: Mapped[int | None] = mapped_column(Integer)
    # The interface language they chose ("en", "zh_CN"); None: their browser's (webapp.i18n).
    language: Mapped[str | None] = mapped_column(String(8))
    # Bumped by logout, a password change or reset and deactivation: every session and remember
    # cookie carries the generation it was issued under, so older ones stop working at once.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(TSTZ)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def may_review(self) -> bool:
        return self.role in (Role.ADMIN, Role.REVIEWER)

    # flask-login's interface, without importing flask-login into the library.
    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """flask-login's session and remember-cookie id: the user and their session generation."""
        return f"{self.id}:{self.session_generation}"

    def end_sessions(self) -> None:
        """Invalidate every session and remember cookie issued so far."""
        self.session_generation = (self.session_generation or 0) + 1

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role.value}>"


class Dataset(Base):
    """A named collection of texts to label with one label set."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    labels: Mapped[list[str]] = mapped_column(JSONB)
    # What each label means, in a few words: the cold-start similarity and LLM prompts use it.
    label_descriptions: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    # The labeling guidelines (Markdown) as they stand, and their version (include.services.guidelines).
    guidelines: Mapped[str] = mapped_column(Text, default="", server_default="")
    guidelines_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ls_project_id: Mapped[int | None] = mapped_column(Integer)
    # Set before the platform asks Label Studio for a project: if it is set but ls_project_id is
    # not, an earlier run may have created one and the next run looks for it.
    ls_project_requested_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # Kept by add_items / delete_items so statistics never count millions of items.
    item_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Evaluation-set policy (include.services.eval_set): the share of labeled items reserved
    # for evaluation, the least per label, and the most in all.
    eval_fraction: Mapped[float] = mapped_column(Float, default=0.2, server_default="0.2")
    eval_min_per_label: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    eval_cap: Mapped[int] = mapped_column(Integer, default=1000, server_default="1000")
    # De-identification: with a policy, no text reaches Label Studio, embeddings or an LLM before
    # the deidentify step has replaced its personal data (include.services.pii).
    pii_policy_id: Mapped[int | None] = mapped_column(ForeignKey("pii_policies.id", ondelete="RESTRICT"))
    # Or, instead of a policy, why the dataset holds no personal data. Neither: no decision yet,
    # and no pipeline touches its texts (include.services.privacy). Who decided, and when.
    pii_exempt_reason: Mapped[str | None] = mapped_column(Text)
    # Upload columns kept beside the text (de-identified with it); any other column is dropped.
    keep_columns: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=sql_text("'[]'"))
    pii_decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    pii_decided_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # The quality gate's thresholds that differ from the defaults (include.services.quality).
    quality_thresholds: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    # Share of auto-assigned tasks that also go to a second annotator (agreement).
    overlap_share: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # The live loop: this many new labels since the last model (or the last time the loop was
    # started for it) start a quick retrain of this dataset alone; NULL: only the nightly loop.
    retrain_after_labels: Mapped[int | None] = mapped_column(Integer, default=50, server_default="50")
    live_loop_signalled_at: Mapped[datetime | None] = mapped_column(TSTZ)
    live_loop_signal_run: Mapped[str | None] = mapped_column(String(250))  # the export run that sent it
    live_loop_started_at: Mapped[datetime | None] = mapped_column(TSTZ)  # a loop run picked the dataset up
    # Coalesced exports (include.services.webhooks): an export was asked for / last began reading.
    export_signalled_at: Mapped[datetime | None] = mapped_column(TSTZ)
    export_started_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # The loop fine-tunes the encoder at this many labeled tasks and each doubling; NULL: never.
    retune_at_labels: Mapped[int | None] = mapped_column(Integer)
    # What counts (include.services.label_policy): which labels may train, and which may judge
    # models in the evaluation set: "any", "reviewed" or "agreed_or_reviewed".
    train_labels: Mapped[str] = mapped_column(String(24), default="any", server_default="any")
    # Hidden gold (include.services.gold): the share of each auto-assignment that is gold items,
    # and the gold accuracy an annotator should keep (an alert when confidently below it).
    gold_share: Mapped[float] = mapped_column(Float, default=0.05, server_default="0.05")
    gold_threshold: Mapped[float] = mapped_column(Float, default=0.8, server_default="0.8")
    eval_labels: Mapped[str] = mapped_column(
        String(24), default="agreed_or_reviewed", server_default="agreed_or_reviewed"
    )
    # "reliability": train on the label reliability estimate's labels and weights
    # (include.services.reliability); "off": on the labels as they are.
    label_weights: Mapped[str] = mapped_column(String(16), default="off", server_default="off")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class Item(Base):
    """One text of a dataset; ``text_hash`` (sha256 hex) deduplicates texts within a dataset."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("dataset_id", "text_hash", name="uq_items_dataset_text_hash"),
        Index("ix_items_text_hash", "text_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    # none: no policy applies; pending: waits for the deidentify step; done: ``text`` is de-identified.
    pii_status: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    # Why the last de-identification run left it pending (the LLM recognizer failed closed).
    pii_note: Mapped[str | None] = mapped_column(Text)
    # The original text and kept columns, encrypted with PII_KEY, while the item waits for its
    # first de-identification; ``text`` is empty and ``text_hash`` keyed meanwhile (sealing.py).
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class Task(Base):
    """Shadow index row of one Label Studio task."""

    __tablename__ = "tasks"
    __table_args__ = (
        # An annotator's task list: WHERE assigned_to = ? [AND status = ?] ORDER BY priority DESC.
        # Partial (assigned tasks only): new tasks are unassigned, so bulk imports skip them.
        Index(
            "ix_tasks_assignee_status_priority",
            "assigned_to",
            "status",
            sql_text("priority DESC"),
            "id",
            postgresql_where=sql_text("assigned_to IS NOT NULL"),
        ),
        # Tasks Label Studio still holds an older text of (rewritten by the next import).
        Index("ix_tasks_ls_data_stale", "dataset_id", "id", postgresql_where=sql_text("ls_data_stale")),
        Index(
            "ix_tasks_assignee_priority",
            "assigned_to",
            sql_text("priority DESC"),
            "id",
            postgresql_where=sql_text("assigned_to IS NOT NULL"),
        ),
        # Auto-assign queue: a dataset's unassigned, unlabeled tasks by priority.
        Index(
            "ix_tasks_unassigned_queue",
            "dataset_id",
            sql_text("priority DESC"),
            "id",
            postgresql_where=sql_text("assigned_to IS NULL AND status = 'imported'"),
        ),
        Index("ix_tasks_dataset_status", "dataset_id", "status"),
        # A Label Studio task id means something only within its project (and instance).
        UniqueConstraint("ls_project_id", "ls_task_id", name="uq_tasks_ls_project_task"),
        Index(
            "ix_tasks_assignee_labeled_at",
            "assigned_to",
            "labeled_at",
            postgresql_where=sql_text("assigned_to IS NOT NULL AND labeled_at IS NOT NULL"),
        ),
        CheckConstraint("priority >= 0 AND priority <= 1000", name="priority_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    ls_project_id: Mapped[int] = mapped_column(Integer)
    ls_task_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[TaskStatus] = mapped_column(
        _enum(TaskStatus, "task_status"), default=TaskStatus.IMPORTED, server_default=TaskStatus.IMPORTED.value
    )
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(TSTZ)
    label: Mapped[str | None] = mapped_column(String(64))
    labeled_at: Mapped[datetime | None] = mapped_column(TSTZ)
    prelabel_label: Mapped[str | None] = mapped_column(String(64))
    prelabel_score: Mapped[float | None] = mapped_column(Float)
    prelabel_json: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    model_version: Mapped[str | None] = mapped_column(String(128))
    model_prob: Mapped[float | None] = mapped_column(Float)
    uncertainty_score: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ls_updated_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # The item's text changed after import (a policy attached or changed): Label Studio's copy
    # of the task's data is rewritten by the next import run (include.pipelines.ls_import).
    ls_data_stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    # When a training run first used this task's text: such a task can never join the eval set.
    first_trained_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # What the label rests on (include.services.consensus): "single" annotator, two or more
    # "agreed", or "reviewed" (a reviewer accepted or fixed it, or an admin resolved it).
    label_basis: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now(), onupdate=func.now())

    item: Mapped[Item] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[User | None] = relationship(lazy="select")


REVIEW_VERDICTS = ("accepted", "fixed", "rejected")


class Annotation(Base):
    """One Label Studio annotation of a task, attributed to a platform user where the email maps."""

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("task_id", "ls_annotation_id", name="uq_annotations_task_ls_annotation"),
        # The review queue: submitted labels nobody has reviewed yet, oldest first.
        Index(
            "ix_annotations_review_queue",
            "id",
            postgresql_where=sql_text(
                "review IS NULL AND label IS NOT NULL AND NOT was_cancelled AND NOT ground_truth"
            ),
        ),
        # An annotator's labels a reviewer sent back.
        Index("ix_annotations_returned", "annotator_id", postgresql_where=sql_text("review = 'rejected'")),
        Index("ix_annotations_suspect", "task_id", postgresql_where=sql_text("suspect IS NOT NULL")),
        CheckConstraint(f"review IN ({', '.join(repr(v) for v in REVIEW_VERDICTS)})", name="review"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    ls_annotation_id: Mapped[int | None] = mapped_column(BigInteger)
    ls_user_email: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[str | None] = mapped_column(String(64))
    was_cancelled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    ground_truth: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    source: Mapped[AnnotationSource] = mapped_column(_enum(AnnotationSource, "annotation_source"))
    # The guidelines version the annotator had in front of them (None: not given in the web app).
    guidelines_version: Mapped[int | None] = mapped_column(Integer)
    # Seconds from opening the task to pressing the label (None: not measured, e.g. Label Studio's UI).
    lead_time: Mapped[float | None] = mapped_column(Float)
    # The last review (include.services.review): it holds while the label is still
    # ``reviewed_label``; a new label from the annotator clears it (back in the queue).
    review: Mapped[str | None] = mapped_column(String(16))
    reviewed_label: Mapped[str | None] = mapped_column(String(64))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # How likely the label is wrong, by the reliability estimate, when that is high enough to
    # be worth a review (include.services.reliability); None: not suspected.
    suspect: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    synced_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class Review(Base):
    """One reviewer's verdict on one annotation, kept for good: who, when, the label before and
    after, and the comment the annotator gets back with a rejection."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(f"verdict IN ({', '.join(repr(v) for v in REVIEW_VERDICTS)})", name="verdict"),
        Index("ix_reviews_annotator_created", "annotator_id", "created_at"),
        Index("ix_reviews_reviewer_created", "reviewer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    # The annotation may be deleted in Label Studio later; the verdict stays on record.
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"), index=True)
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(16))
    label_before: Mapped[str] = mapped_column(String(64))
    label_after: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class LsProject(Base):
    """Per Label Studio project sync state: the export watermark and the live model version."""

    __tablename__ = "ls_projects"

    ls_project_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255), default="")
    # Created by the platform for one dataset (deleted with it), or configured via LS_PROJECT_ID.
    owned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    model_version: Mapped[str | None] = mapped_column(String(128))
    # Label Studio's own created_at of the project (its text, as Label Studio writes it): a new
    # or restored instance may number another project the same (ls_identity.py).
    ls_created_at: Mapped[str | None] = mapped_column(Text)
    export_watermark: Mapped[datetime | None] = mapped_column(TSTZ)
    last_export_at: Mapped[datetime | None] = mapped_column(TSTZ)
    # Tasks of the project that are not the platform's (made in Label Studio), at the last count.
    foreign_tasks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The guidelines version the project shows as its instruction.
    instruction_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class GuidelineVersion(Base):
    """One saved version of a dataset's guidelines and label descriptions: labels record the
    version they were given under, so a change of the rules can be traced in the labels."""

    __tablename__ = "guideline_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_guideline_versions_dataset_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    label_descriptions: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class LsInstance(Base):
    """The Label Studio instance the platform's tasks live in, recorded at first contact: its
    organization's id and creation time (a new instance has another; a URL may change)."""

    __tablename__ = "ls_instances"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1, server_default=sql_text("1"))
    url: Mapped[str] = mapped_column(Text)
    organization_id: Mapped[int] = mapped_column(Integer)
    organization_created_at: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


JOB_RUN, JOB_STEP = "run", "step"


class Job(Base):
    """One pipeline run (or one step of a multi-step run), shown on the jobs page."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "step", "map_index", "kind", name="uq_jobs_dag_run_step_map"),
        CheckConstraint("kind IN ('run', 'step')", name="ck_jobs_kind"),
        Index("ix_jobs_created_at", sql_text("created_at DESC")),
        Index("ix_jobs_active", "status", postgresql_where=sql_text("status IN ('queued', 'running')")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The step (DAG task) this row tracks; the row of a whole run (kind "run") has the pipeline's name.
    step: Mapped[str] = mapped_column(String(64))
    # "run": a triggered run, closed from the DAG run's state; "step": one task (one map index) of it.
    kind: Mapped[str] = mapped_column(String(8), default=JOB_STEP, server_default=JOB_STEP)
    map_index: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.QUEUED)
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    triggered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(TSTZ)
    finished_at: Mapped[datetime | None] = mapped_column(TSTZ)


class JobAttempt(Base):
    """One try of a job's step, as Airflow ran it: a retry adds a row, a killed try is closed
    as failed by the next try or by the reconciler that reads Airflow's task-instance state."""

    __tablename__ = "job_attempts"
    __table_args__ = (UniqueConstraint("job_id", "try_number", name="uq_job_attempts_job_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState, "attempt_state"))
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    task_id: Mapped[str | None] = mapped_column(String(250))  # Airflow task id (with its group)
    map_index: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    hostname: Mapped[str] = mapped_column(String(255), default="", server_default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(TSTZ)


class LsWebhook(Base):
    """A Label Studio webhook delivery, kept until the platform has told Airflow about it.

    ``body_sha256`` makes a replayed or retried delivery of the same event a no-op; the
    signaller (include.labelstudio.signals) turns pending rows into one asset event per dataset.
    """

    __tablename__ = "ls_webhooks"
    __table_args__ = (
        Index("ix_ls_webhooks_pending", "next_attempt_at", postgresql_where=sql_text("signalled_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    ls_project_id: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    signalled_at: Mapped[datetime | None] = mapped_column(TSTZ)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The echo of an annotation the platform itself delivered: kept for the record, starts nothing.
    echo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    # Covered by an export already asked for and not yet started: no new event was posted.
    coalesced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))


class LsEcho(Base):
    """One webhook the platform expects from Label Studio for an annotation it is writing there.

    The dispatcher adds one right before each write; the receiver takes one for each
    ``ANNOTATION_CREATED``/``UPDATED`` delivery of that project, and such a delivery is an echo.
    One that is never taken (Label Studio sent no webhook) lapses at ``expires_at``.
    """

    __tablename__ = "ls_echoes"
    __table_args__ = (Index("ix_ls_echoes_project", "ls_project_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ls_project_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TSTZ)


class LabelOutbox(Base):
    """A label on its way to Label Studio: committed with the annotation, delivered by the
    dispatcher (include.workers.label_dispatcher), safe to deliver again.

    One entry per annotation (``idempotency_key`` names the task and annotator); a new label
    for the same annotation bumps ``version`` and makes the entry pending again.
    """

    __tablename__ = "label_outbox"
    __table_args__ = (
        Index("ix_label_outbox_due", "next_attempt_at", postgresql_where=sql_text("status = 'pending'")),
        Index("ix_label_outbox_open", "user_id", postgresql_where=sql_text("status <> 'sent'")),
        Index("ix_label_outbox_sent_at", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))  # "" for a skip
    ground_truth: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    # A skip: Label Studio gets a cancelled annotation (was_cancelled, no result).
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    status: Mapped[OutboxStatus] = mapped_column(
        _enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING, server_default="pending"
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    ls_annotation_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(TSTZ)


class EmbeddingModel(Base):
    """An embedding model; its vectors live in ``embeddings`` with a per-model HNSW index."""

    __tablename__ = "embedding_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    backend: Mapped[EmbeddingBackend] = mapped_column(_enum(EmbeddingBackend, "embedding_backend"))
    model: Mapped[str] = mapped_column(String(255))
    dimension: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    # A fine-tuned encoder (``ft:`` names): its weights as a tar archive, loaded by any worker from
    # here (no shared disk), the dataset it was tuned on, and how (base model, experiment, pairs).
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))

    __table_args__ = (CheckConstraint("dimension > 0 AND dimension <= 2000", name="dimension_range"),)


class Embedding(Base):
    """A text's vector for one model, keyed by text hash so a text is embedded once per model.

    The column has no fixed dimension so models of different sizes share the table; each model
    gets a partial HNSW index over ``embedding::vector(dim)`` (see include.services.vectors).
    """

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("model_id", "text_hash", name="uq_embeddings_model_text_hash"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("embedding_models.id", ondelete="CASCADE"))
    text_hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[Any] = mapped_column(Vector())
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class Experiment(Base):
    """One training run: its hyperparameters, data sizes and final metrics."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    embedding_model_id: Mapped[int | None] = mapped_column(ForeignKey("embedding_models.id", ondelete="SET NULL"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    device: Mapped[str] = mapped_column(String(32), default="cpu")
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    n_val: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(String(250))
    # The labels it was trained on, exactly (include.services.snapshots).
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(TSTZ)

    epochs: Mapped[list[ExperimentEpoch]] = relationship(
        order_by="ExperimentEpoch.epoch", cascade="all, delete-orphan", passive_deletes=True
    )


class ExperimentEpoch(Base):
    """Per-epoch metrics of an experiment, for learning curves."""

    __tablename__ = "experiment_epochs"
    __table_args__ = (UniqueConstraint("experiment_id", "epoch", name="uq_experiment_epochs_experiment_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ModelVersion(Base):
    """Model registry entry: a trained classifier head and why it was promoted or rejected."""

    __tablename__ = "models"
    __table_args__ = (
        # At most one promoted model per dataset and embedding model.
        Index(
            "uq_models_one_promoted",
            "dataset_id",
            "embedding_model_id",
            unique=True,
            postgresql_where=sql_text("status = 'promoted'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[ModelStatus] = mapped_column(_enum(ModelStatus, "model_status"), default=ModelStatus.CANDIDATE)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id", ondelete="SET NULL"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    # None for an LLM baseline (it reads the texts, not embeddings).
    embedding_model_id: Mapped[int | None] = mapped_column(ForeignKey("embedding_models.id", ondelete="CASCADE"))
    labels: Mapped[list[str]] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The gate's decision: eval-set version and size, both models' scores, the interval of the difference.
    gate: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'"))
    artifact_path: Mapped[str] = mapped_column(Text)  # legacy rows only: heads now live in ``artifact``
    # The head itself (TrainedHead.to_bytes): every worker reads it from here, no shared disk.
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    promoted_at: Mapped[datetime | None] = mapped_column(TSTZ)


class TaskCount(Base):
    """Task counts per (dataset, assignee, status, label), kept exact by statement-level triggers
    on ``tasks`` (migration 0002), so statistics pages read a few rows instead of counting
    millions. ``assignee_id`` 0 and ``label`` '' stand for none."""

    __tablename__ = "task_counts"

    dataset_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignee_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class LoginThrottle(Base):
    """Failed-login counters shared by every web process (see include.services.login_throttle).

    ``key`` is ``ip:<address>`` (failures in the current one-minute window) or ``user:<name>``
    (consecutive failures, and the backoff they earned).
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    window_start: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    blocked_until: Mapped[datetime | None] = mapped_column(TSTZ)


class KeyFingerprint(Base):
    """Which key a secret of the platform is (PII_KEY): an HMAC of a fixed text under the key,
    recorded the first time the key is used, so a different key is caught at start rather than
    when a reveal, an export or a policy change fails (see include.services.key_check)."""

    __tablename__ = "key_fingerprints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class PiiPolicy(Base):
    """Which personal data to replace, and how: ``entities`` maps an entity type to an operator."""

    __tablename__ = "pii_policies"
    __table_args__ = (
        Index("uq_pii_policies_one_default", "is_default", unique=True, postgresql_where=sql_text("is_default")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    entities: Mapped[dict[str, str]] = mapped_column(JSONB)
    locale: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    use_llm: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    # The platform's default: every new dataset gets it unless its creator decides otherwise.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class PiiMapping(Base):
    """The originals behind an item's replacements, encrypted with PII_KEY; only admins reveal them."""

    __tablename__ = "pii_mappings"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("pii_policies.id", ondelete="SET NULL"))
    policy_version: Mapped[int] = mapped_column(Integer)
    replacements: Mapped[int] = mapped_column(Integer, default=0)
    mapping: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class PiiReveal(Base):
    """Audit: an admin saw original personal data (one item, or an export with originals).

    The dataset and item ids are plain numbers, not foreign keys, and the dataset's name and the
    username are copied: the record of what was revealed outlives the dataset and the account."""

    __tablename__ = "pii_reveals"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64), default="", server_default="")
    dataset_id: Mapped[int | None] = mapped_column(Integer)
    dataset_name: Mapped[str] = mapped_column(String(128), default="", server_default="")
    item_id: Mapped[int | None] = mapped_column(BigInteger)
    what: Mapped[str] = mapped_column(String(32))  # item | export
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class QualityReport(Base):
    """One run of the dataset quality gate: pass or fail per check, with examples; an admin can
    override a failing gate, with a reason on record."""

    __tablename__ = "quality_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    checks: Mapped[dict[str, Any]] = mapped_column(JSONB)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONB)
    override_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    override_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    overridden_at: Mapped[datetime | None] = mapped_column(TSTZ)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


FLAG_KINDS = ("skip", "not_sure", "bad_item", "pii_left", "guideline_unclear")
# Kinds that hold the task back from everyone until an admin resolves them (the others only
# from the annotator who raised them).
HOLDING_FLAGS = ("bad_item", "pii_left", "guideline_unclear")


class TaskFlag(Base):
    """An annotator's skip, "not sure" or flag on a task (include.services.flags)."""

    __tablename__ = "task_flags"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in FLAG_KINDS)})", name="kind"),
        Index("ix_task_flags_open", "task_id", postgresql_where=sql_text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(TSTZ)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ExtraAssignee(Base):
    """A second (or third) annotator of a task, for agreement (the first is ``tasks.assigned_to``)."""

    __tablename__ = "task_extra_assignees"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    assigned_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    # A hidden gold check: the task has a known label; the answer is a GoldAnswer, never a label.
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))


class GoldAnswer(Base):
    """An annotator's answer on a hidden gold task, against the label it was known to have. Kept
    apart from annotations: it never reaches Label Studio, never votes, never trains."""

    __tablename__ = "gold_answers"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id", name="uq_gold_answers_task_user"),
        Index("ix_gold_answers_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64))
    expected: Mapped[str] = mapped_column(String(64))
    correct: Mapped[bool] = mapped_column(Boolean)
    lead_time: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class GoldAlert(Base):
    """An annotator whose gold accuracy is confidently below the dataset's threshold; open until
    an admin clears it (the dashboard shows open ones)."""

    __tablename__ = "gold_alerts"
    __table_args__ = (
        Index("ix_gold_alerts_open", "dataset_id", "user_id", postgresql_where=sql_text("cleared_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    answered: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    cleared_at: Mapped[datetime | None] = mapped_column(TSTZ)
    cleared_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Snapshot(Base):
    """An immutable, versioned copy of a dataset's labels; a training run names the one it used."""

    __tablename__ = "snapshots"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version", name="uq_snapshots_dataset_id"),
        UniqueConstraint("dataset_id", "content_hash", name="uq_snapshots_dataset_id_content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    per_label: Mapped[dict[str, int]] = mapped_column(JSONB)
    eval_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class SnapshotItem(Base):
    __tablename__ = "snapshot_items"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    in_eval: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the label rested on when the snapshot was taken (single, agreed, reviewed).
    basis: Mapped[str | None] = mapped_column(String(16))


class InferenceRun(Base):
    """A registered model version run over a dataset or an uploaded file (batch inference)."""

    __tablename__ = "inference_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # dataset | upload
    filename: Mapped[str] = mapped_column(String(255), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    rows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(TSTZ)


class InferenceInput(Base):
    """A text of an uploaded file waiting for batch inference."""

    __tablename__ = "inference_inputs"

    run_id: Mapped[int] = mapped_column(ForeignKey("inference_runs.id", ondelete="CASCADE"), primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))


class InferenceResult(Base):
    """One prediction of a batch-inference run."""

    __tablename__ = "inference_results"

    run_id: Mapped[int] = mapped_column(ForeignKey("inference_runs.id", ondelete="CASCADE"), primary_key=True)
    row: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # item id, or row of the upload
    text_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    uncertainty: Mapped[float] = mapped_column(Float)
    probs: Mapped[list[float]] = mapped_column(ARRAY(Float))


class EvalItem(Base):
    """A text reserved for evaluation: no training run ever uses it (include.services.eval_set).

    Membership is sticky: chosen once (by its text hash, or topped up, or added by an admin as a
    gold item) it stays until an admin drops it (``excluded``), so numbers stay comparable.
    """

    __tablename__ = "eval_items"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # sample | top_up | gold
    excluded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class ExperimentItem(Base):
    """Which texts a training run used, and for what: the lineage of every model."""

    __tablename__ = "experiment_items"

    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    split: Mapped[str] = mapped_column(String(8))  # train | val


class ModelEvaluation(Base):
    """A model version's evaluation report on one version of its dataset's eval set."""

    __tablename__ = "model_evaluations"
    __table_args__ = (UniqueConstraint("model_id", "eval_version", name="uq_model_evaluations_model_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    eval_version: Mapped[str] = mapped_column(String(32))
    n: Mapped[int] = mapped_column(Integer)
    macro_f1: Mapped[float] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())


class TrainingConfigFile(Base):
    """A YAML training config of a dataset (include.ml.training.configs): as uploaded, and parsed."""

    __tablename__ = "training_configs"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_training_configs_dataset_id_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sweep: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TSTZ, server_default=func.now(), onupdate=func.now())
