"""An annotator labels a task in the web app: Label Studio first (the source of truth,
attributed to that annotator), then the shadow index, in one action.

If Label Studio fails, nothing is written anywhere. If the database write fails after Label
Studio accepted the annotation, the annotation is removed from Label Studio again, so the
two never disagree because of a half-done action.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Annotation, AnnotationSource, Dataset, Task, TaskStatus, User
from include.labelstudio.client import LabelStudioClient, LabelStudioError
from include.labelstudio.label_config import choice_result
from include.services.consensus import Vote, decide

log = logging.getLogger(__name__)


class LabelingError(ValueError):
    """The label cannot be recorded; the message is safe to show to the annotator."""


def ensure_ls_user(session: Session, client: LabelStudioClient, user: User) -> int:
    """The annotator's Label Studio user id (found by email, or created), cached on the user."""
    if user.ls_user_id:
        return user.ls_user_id
    email = user.email.lower()
    match = next((u for u in client.list_users() if str(u.get("email", "")).lower() == email), None)
    if match is None:
        match = client.create_user(email, user.username, first_name=user.username)
    user.ls_user_id = int(match["id"])
    session.flush()
    return user.ls_user_id


def submit_label(session: Session, client: LabelStudioClient, task_id: int, user: User, label: str) -> Task:
    """Record ``user``'s ``label`` for their assigned task in Label Studio and the shadow index.

    Raises:
        LabelingError: not the user's task, a deleted task, or a label outside the dataset's set.
        LabelStudioError: Label Studio refused or was unreachable (nothing was recorded).
    """
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None or task.assigned_to != user.id:
        raise LabelingError("this task is not assigned to you")
    if task.status == TaskStatus.DELETED:
        raise LabelingError("this task was deleted in Label Studio")
    dataset = session.get(Dataset, task.dataset_id)
    if dataset is None or label not in dataset.labels:
        raise LabelingError(f"choose one of: {', '.join(dataset.labels if dataset else [])}")
    ls_user_id = ensure_ls_user(session, client, user)
    mine = session.scalar(
        select(Annotation)
        .where(Annotation.task_id == task.id, Annotation.annotator_id == user.id)
        .order_by(Annotation.id)
    )
    result = choice_result(label)
    created_ls_id: int | None = None
    if mine is not None and mine.ls_annotation_id is not None:
        ls_annotation = client.update_annotation(mine.ls_annotation_id, result)
    else:
        ls_annotation = client.create_annotation(task.ls_task_id, result, completed_by=ls_user_id)
        created_ls_id = int(ls_annotation["id"])
    try:
        now = datetime.now(UTC)
        stmt = insert(Annotation).values(
            task_id=task.id,
            annotator_id=user.id,
            ls_annotation_id=int(ls_annotation["id"]),
            ls_user_email=user.email,
            label=label,
            was_cancelled=False,
            source=AnnotationSource.WEBAPP.value,
            created_at=now,
            updated_at=now,
            synced_at=now,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["ls_annotation_id"], set_={"label": label, "updated_at": now, "synced_at": now}
            )
        )
        votes = [
            Vote(label=a.label, cancelled=a.was_cancelled, ground_truth=a.ground_truth, updated_at=a.updated_at)
            for a in session.scalars(
                select(Annotation).where(Annotation.task_id == task.id).execution_options(populate_existing=True)
            )
        ]
        status, final = decide(votes)
        task.status, task.label = status or TaskStatus.LABELED, final
        task.labeled_at = now
        session.flush()
    except Exception:
        if created_ls_id is not None:
            _undo(client, created_ls_id)
        raise
    return task


def _undo(client: LabelStudioClient, annotation_id: int) -> None:
    try:
        client.delete_annotation(annotation_id)
    except LabelStudioError as exc:  # the next ls_export will bring it in instead
        log.error("could not roll back Label Studio annotation %s: %s", annotation_id, exc)


def resolve_conflict(session: Session, client: LabelStudioClient, task_id: int, admin: User, label: str) -> Task:
    """Settle a conflict with a ground-truth annotation by the admin in Label Studio.

    Label Studio keeps the decision (so the next export agrees), and the task becomes labeled
    and eligible for training again.
    """
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None:
        raise LabelingError(f"task {task_id} does not exist")
    if task.status != TaskStatus.CONFLICT:
        raise LabelingError(f"task {task_id} is {task.status.value}, not in conflict")
    dataset = session.get(Dataset, task.dataset_id)
    if dataset is None or label not in dataset.labels:
        raise LabelingError(f"choose one of: {', '.join(dataset.labels if dataset else [])}")
    ls_user_id = ensure_ls_user(session, client, admin)
    created = client.create_annotation(
        task.ls_task_id, choice_result(label), completed_by=ls_user_id, ground_truth=True
    )
    try:
        now = datetime.now(UTC)
        session.add(
            Annotation(
                task_id=task.id,
                annotator_id=admin.id,
                ls_annotation_id=int(created["id"]),
                ls_user_email=admin.email,
                label=label,
                ground_truth=True,
                source=AnnotationSource.WEBAPP,
                created_at=now,
                updated_at=now,
                synced_at=now,
            )
        )
        task.status, task.label, task.labeled_at = TaskStatus.LABELED, label, now
        session.flush()
    except Exception:
        _undo(client, int(created["id"]))
        raise
    return task


def annotations_of(session: Session, task_id: int) -> list[tuple[Annotation, str | None]]:
    """A task's annotations, oldest first, with the annotator's username (None: not a platform user)."""
    rows = session.execute(
        select(Annotation, User.username)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Annotation.task_id == task_id)
        .order_by(Annotation.id)
    ).all()
    return [(annotation, username) for annotation, username in rows]
