"""An annotator labels a task in the web app: one database transaction, then the outbox.

The annotation row, the task's status and an outbox entry are committed together; the
dispatcher (include.workers.label_dispatcher) writes the label to Label Studio afterwards, still
attributed to the annotator. Nothing is half-written if the process dies at any point, and
the web request does not wait for (or fail with) Label Studio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Annotation, AnnotationSource, Dataset, Task, TaskStatus, User
from include.errors import Conflict, Invalid
from include.params import ParamSpec, Values, param
from include.services import gold
from include.services.assignment import may_label
from include.services.consensus import decide_task
from include.services.label_outbox import enqueue
from include.services.task_queries import TaskNotFound

log = logging.getLogger(__name__)


class LabelingError(Invalid):
    """The label cannot be recorded; the message is safe to show to the annotator."""


def _check_label(session: Session, task: Task, label: str) -> None:
    dataset = session.get(Dataset, task.dataset_id)
    if dataset is None or label not in dataset.labels:
        raise LabelingError(f"choose one of: {', '.join(dataset.labels if dataset else [])}")


LABEL = ParamSpec("label", "Label", "str", max_length=64, help="one of the dataset's labels")
GUIDELINES_SEEN = ParamSpec(
    "guidelines_version", "Guidelines version seen", "int", None, nullable=True, minimum=0,
    help="the version of the dataset's guidelines the annotator had open; empty: the current one",
)  # fmt: skip


LEAD_TIME = ParamSpec(
    "lead_time", "Seconds to label", "float", None, nullable=True, minimum=0.0, maximum=86_400.0,
    help="from opening the task to the label (the labeling page measures it)",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LabelChoice(Values):
    """An annotator's answer for one task, the guidelines version they labeled under, and how
    long it took them."""

    label: str = param(LABEL)
    guidelines_version: int | None = param(GUIDELINES_SEEN)
    lead_time: float | None = param(LEAD_TIME)


class TextWithheld(Conflict):
    """The task's text waits for de-identification (a policy attached after import): not shown."""


def new_annotation(task_id: int, user: User, now: datetime, **fields: Any) -> Annotation:
    """A web app annotation of ``user``'s on a task (a label, a resolution or a skip), attributed
    to them by e-mail in Label Studio too; not yet added to the session."""
    return Annotation(
        task_id=task_id,
        annotator_id=user.id,
        ls_user_email=user.email,
        source=AnnotationSource.WEBAPP,
        created_at=now,
        updated_at=now,
        synced_at=now,
        **fields,
    )


def own_task(session: Session, task_id: int, user: User, *, include_deleted: bool = False) -> Task:
    """The task if ``user`` may label it; otherwise :class:`TaskNotFound`, so a task that is not
    theirs looks the same as one that does not exist."""
    task = session.get(Task, task_id)
    gone = task is not None and task.status == TaskStatus.DELETED and not include_deleted
    if task is None or gone or not may_label(session, task, user):
        raise TaskNotFound("task not found")
    if task.item.pii_status == "pending":
        raise TextWithheld("this task's text is waiting for de-identification: it opens again once that has run")
    return task


def submit_label(
    session: Session,
    task_id: int,
    user: User,
    label: str,
    seen: int | None = None,
    lead_time: float | None = None,
) -> Task:
    """Record ``user``'s ``label`` for their assigned task, and queue it for Label Studio.

    Resubmitting the same label changes nothing; a different label updates the annotator's
    annotation (and, through the outbox, the one in Label Studio).

    Raises:
        LabelingError: not the user's task, a deleted task, or a label outside the dataset's set.
    """
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None or not may_label(session, task, user):
        raise LabelingError("this task is not assigned to you")
    if task.status == TaskStatus.DELETED:
        raise LabelingError("this task was deleted in Label Studio")
    _check_label(session, task, label)
    if gold.is_check(session, task.id, user.id):  # a hidden gold check: an answer, not a label
        gold.record_answer(session, task, user, label, lead_time)
        return task
    version = _guidelines_seen(session, task, seen)
    mine = session.scalar(
        select(Annotation)
        .where(Annotation.task_id == task.id, Annotation.annotator_id == user.id, Annotation.ground_truth.is_(False))
        .order_by(Annotation.id)
        .limit(1)
    )
    now = datetime.now(UTC)
    if mine is not None and mine.label == label and not mine.was_cancelled and mine.review != "rejected":
        return task  # the same label again: nothing to change, nothing to send
    if mine is None:
        mine = new_annotation(task.id, user, now, label=label, guidelines_version=version, lead_time=lead_time)
        session.add(mine)
    else:
        mine.label, mine.was_cancelled, mine.updated_at = label, False, now
        mine.guidelines_version, mine.lead_time = version, lead_time
        mine.review = None  # a new answer (after a rejection too) waits for review again
    session.flush()
    enqueue(session, mine)
    decide_task(session, task)
    task.labeled_at = now
    session.flush()
    return task


def _guidelines_seen(session: Session, task: Task, seen: int | None) -> int:
    """The guidelines version a label is given under: the one the page showed, else the current."""
    current = session.get_one(Dataset, task.dataset_id).guidelines_version or 0  # loaded by the label check
    if seen is None:
        return int(current)
    if seen > current:
        raise LabelingError(f"guidelines version {seen} does not exist yet (the dataset is at version {current})")
    return seen


def resolve_conflict(session: Session, task_id: int, admin: User, label: str) -> Task:
    """Settle a conflict with the admin's ground-truth annotation (delivered through the outbox).

    The task becomes labeled and eligible for training again; Label Studio gets the decision as
    a ground-truth annotation, so the next export agrees.
    """
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None:
        raise TaskNotFound(f"task {task_id} does not exist")
    if task.status != TaskStatus.CONFLICT:
        raise LabelingError(f"task {task_id} is {task.status.value}, not in conflict")
    _check_label(session, task, label)
    now = datetime.now(UTC)
    truth = session.scalar(
        select(Annotation).where(
            Annotation.task_id == task.id, Annotation.annotator_id == admin.id, Annotation.ground_truth.is_(True)
        )
    )
    if truth is None:
        truth = new_annotation(task.id, admin, now, label=label, ground_truth=True)
        session.add(truth)
    else:
        truth.label, truth.updated_at = label, now
    session.flush()
    enqueue(session, truth, ground_truth=True)
    task.status, task.label, task.labeled_at, task.label_basis = TaskStatus.LABELED, label, now, "reviewed"
    session.flush()
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
