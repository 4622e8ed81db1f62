"""Skip, "not sure" and flag: an annotator says a task is not theirs to label, and why.

* ``skip`` and ``not_sure``: the task goes back to the pool for someone else; auto-assignment
  never hands it to the same annotator again. A skip reaches Label Studio as a cancelled
  annotation (``was_cancelled``), as Label Studio's own Skip button would make it.
* ``bad_item``, ``pii_left`` and ``guideline_unclear``: the task leaves the annotator's list and
  waits, for everyone, until an admin resolves the flag (fixes the item, its de-identification
  or the guidelines); the open flags are listed on the dataset's Labeling tab.

A flag never touches the task's labels. Its note is read by admins: personal data in it is
refused (include.services.free_text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from include.db.models import (
    FLAG_KINDS,
    HOLDING_FLAGS,
    Annotation,
    Dataset,
    ExtraAssignee,
    Item,
    Task,
    TaskFlag,
    TaskStatus,
    User,
)
from include.errors import Invalid, NotFound
from include.params import ParamSpec, Values, param
from include.services.assignment import may_label
from include.services.free_text import check_free_text
from include.services.label_outbox import enqueue
from include.services.labeling import new_annotation
from include.services.task_queries import TaskNotFound

TITLES = {
    "skip": "Skip",
    "not_sure": "Not sure",
    "bad_item": "Bad item",
    "pii_left": "Personal data left in",
    "guideline_unclear": "Guidelines unclear",
}
KIND = ParamSpec("kind", "Why", "choice", choices=FLAG_KINDS, help="; ".join(f"{k}: {t}" for k, t in TITLES.items()))
NOTE = ParamSpec("note", "Note", "text", "", max_length=500, help="optional, for the admin (no personal data)")


@dataclass(frozen=True, kw_only=True)
class FlagRequest(Values):
    """An annotator's skip, "not sure" or flag on one of their tasks."""

    kind: str = param(KIND)
    note: str = param(NOTE)


class FlagError(Invalid):
    """The flag cannot be raised or resolved; the message says why."""


class FlagNotFound(NotFound):
    """No open flag with that id."""


def flag_task(session: Session, task_id: int, user: User, request: FlagRequest) -> TaskFlag:
    """Record the flag and take the task off the annotator's list.

    Raises:
        TaskNotFound: not the user's task. FlagError: already labeled by them.
        PersonalDataInText: the note holds personal data.
    """
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None or task.status == TaskStatus.DELETED or not may_label(session, task, user):
        raise TaskNotFound("task not found")
    note = request.note.strip()
    check_free_text(note, "the note", readers="admins")
    flag = TaskFlag(task_id=task.id, user_id=user.id, kind=request.kind, note=note)
    session.add(flag)
    shared = session.get(ExtraAssignee, (task.id, user.id))
    hidden_gold = task.assigned_to != user.id and shared is not None and shared.gold
    if task.assigned_to == user.id:
        if task.status not in (TaskStatus.ASSIGNED, TaskStatus.IMPORTED):
            raise FlagError(f"task {task.id} is {task.status.value}: relabel it instead of skipping it")
        task.assigned_to, task.assigned_at, task.status = None, None, TaskStatus.IMPORTED
    else:  # shared with them for agreement: only their share goes
        session.execute(delete(ExtraAssignee).where(ExtraAssignee.task_id == task.id, ExtraAssignee.user_id == user.id))
    if request.kind == "skip" and not hidden_gold:  # a gold check never shows in Label Studio
        _skip_in_label_studio(session, task, user)
    session.flush()
    return flag


def _skip_in_label_studio(session: Session, task: Task, user: User) -> None:
    """Label Studio gets the skip as its own kind of annotation (``was_cancelled``), through the
    outbox like a label; a skip never replaces a label the annotator already gave."""
    mine = session.scalar(
        select(Annotation).where(
            Annotation.task_id == task.id, Annotation.annotator_id == user.id, Annotation.ground_truth.is_(False)
        )
    )
    if mine is not None:
        return
    now = datetime.now(UTC)
    skipped = new_annotation(task.id, user, now, label=None, was_cancelled=True)
    session.add(skipped)
    session.flush()
    enqueue(session, skipped)


def open_flags(session: Session, dataset_id: int, limit: int = 200) -> list[tuple[TaskFlag, str | None]]:
    """The dataset's unresolved flags, newest first, with who raised them."""
    rows = session.execute(
        select(TaskFlag, User.username)
        .join(Task, Task.id == TaskFlag.task_id)
        .outerjoin(User, User.id == TaskFlag.user_id)
        .where(Task.dataset_id == dataset_id, TaskFlag.resolved_at.is_(None))
        .order_by(TaskFlag.id.desc())
        .limit(limit)
    ).all()
    return [(flag, username) for flag, username in rows]


@dataclass(frozen=True)
class HeldTask:
    """A task an open flag holds for everyone, as the review queue lists it."""

    flag: TaskFlag
    username: str | None
    dataset_name: str
    text: str


def held_tasks(session: Session, dataset_id: int | None = None, limit: int = 50) -> list[HeldTask]:
    """Open holding flags (bad item, personal data left in, guidelines unclear), oldest first,
    with the task's text unless it waits for de-identification."""
    stmt = (
        select(TaskFlag, User.username, Dataset.name, Item.text, Item.pii_status)
        .join(Task, Task.id == TaskFlag.task_id)
        .join(Item, Item.id == Task.item_id)
        .join(Dataset, Dataset.id == Task.dataset_id)
        .outerjoin(User, User.id == TaskFlag.user_id)
        .where(TaskFlag.resolved_at.is_(None), TaskFlag.kind.in_(HOLDING_FLAGS))
        .order_by(TaskFlag.id)
        .limit(limit)
    )
    if dataset_id is not None:
        stmt = stmt.where(Task.dataset_id == dataset_id)
    return [
        HeldTask(flag, username, str(name), "" if status == "pending" else str(text))
        for flag, username, name, text, status in session.execute(stmt).all()
    ]


def resolve_any(session: Session, flag_id: int, user: User) -> TaskFlag:
    """:func:`resolve` for a flag named by its id alone (the review queue lists every dataset's)."""
    task_dataset = session.scalar(
        select(Task.dataset_id).join(TaskFlag, TaskFlag.task_id == Task.id).where(TaskFlag.id == flag_id)
    )
    if task_dataset is None:
        raise FlagNotFound(f"no open flag {flag_id}")
    return resolve(session, int(task_dataset), flag_id, user)


def counts(session: Session, dataset_id: int) -> dict[str, int]:
    """Open flags of the dataset by kind."""
    rows = session.execute(
        select(TaskFlag.kind, func.count())
        .join(Task, Task.id == TaskFlag.task_id)
        .where(Task.dataset_id == dataset_id, TaskFlag.resolved_at.is_(None))
        .group_by(TaskFlag.kind)
    ).tuples()
    return {str(kind): int(n) for kind, n in rows}


def resolve(session: Session, dataset_id: int, flag_id: int, admin: User) -> TaskFlag:
    """Close an open flag: the task can be assigned again (to anyone but a skipper).

    Raises:
        FlagNotFound: no open flag with that id in the dataset.
    """
    flag = session.scalar(
        select(TaskFlag)
        .join(Task, Task.id == TaskFlag.task_id)
        .where(TaskFlag.id == flag_id, Task.dataset_id == dataset_id, TaskFlag.resolved_at.is_(None))
    )
    if flag is None:
        raise FlagNotFound(f"no open flag {flag_id} in this dataset")
    flag.resolved_at, flag.resolved_by = datetime.now(UTC), admin.id
    session.flush()
    return flag
