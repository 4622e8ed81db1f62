"""Pre-labels in the shadow index: which tasks still need one, and recording them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from include.db.models import Item, Job, JobStatus, Task, TaskStatus

UNLABELED = (TaskStatus.IMPORTED, TaskStatus.ASSIGNED)


def unlabeled_tasks(
    session: Session, dataset_id: int, *, after_id: int, limit: int, skip_version: str | None = None
) -> list[tuple[int, int, str, str, str | None]]:
    """(task id, Label Studio task id, text hash, text, current pre-label version) of unlabeled
    tasks, by id (keyset); tasks already pre-labeled by ``skip_version`` are left out."""
    stmt = (
        select(Task.id, Task.ls_task_id, Item.text_hash, Item.text, Task.model_version)
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset_id, Task.status.in_(UNLABELED), Task.id > after_id)
        .where(Item.pii_status != "pending")  # its text is sealed or about to change
    )
    if skip_version is not None:
        stmt = stmt.where(or_(Task.model_version.is_(None), Task.model_version != skip_version))
    rows = session.execute(stmt.order_by(Task.id).limit(limit)).tuples()
    return [(int(a), int(b), str(c), str(d), e) for a, b, c, d, e in rows]


def current_predictions(
    session: Session, dataset_id: int, ls_task_ids: list[int], model_version: str
) -> list[tuple[int, str, float]]:
    """(Label Studio task id, label, confidence) of these tasks' pre-labels by ``model_version``."""
    rows = session.execute(
        select(Task.ls_task_id, Task.prelabel_label, Task.prelabel_score).where(
            Task.dataset_id == dataset_id,
            Task.ls_task_id.in_(ls_task_ids),
            Task.model_version == model_version,
            Task.prelabel_label.is_not(None),
        )
    ).tuples()
    return [(int(a), str(b), float(c or 0.0)) for a, b, c in rows]


def previous_run_unfinished(session: Session, dataset_id: int, job_id: int) -> bool:
    """Whether the dataset's pre-labeling before job ``job_id`` ended other than cleanly: a run killed
    after Label Studio took a batch and before the shadow index recorded it left predictions there
    that the shadow index does not know of."""
    status = session.scalar(
        select(Job.status)
        .where(Job.step == "prelabel", Job.dataset_id == dataset_id, Job.id < job_id)
        .order_by(Job.id.desc())
        .limit(1)
    )
    return status is not None and status not in (JobStatus.SUCCESS, JobStatus.SKIPPED)


def record_prelabels(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk-update ``prelabel_label``, ``prelabel_score``, ``prelabel_json`` and ``model_version`` by task id."""
    if rows:
        session.execute(update(Task), rows)
