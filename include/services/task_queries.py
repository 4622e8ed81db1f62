"""Task lists for pages and the API, ordered by priority (hardest first), keyset-friendly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload

from include.db.models import Annotation, ExtraAssignee, GoldAnswer, Item, Task, TaskStatus, User
from include.errors import Invalid, NotFound
from include.params import ParamSpec, param
from include.services.paging import DATASET_FILTER, Page, PageQuery, paginate

MAX_PAGE_SIZE = 200

ONLY_UNLABELED = ParamSpec("only_unlabeled", "Only unlabeled", "bool", True, help="false: labeled tasks too")
STATUS_FILTER = ParamSpec(
    "status", "Status", "choice", None, nullable=True, choices=tuple(s.value for s in TaskStatus), help="empty: any"
)


class TaskNotFound(NotFound):
    """The task id names no task."""


def get_task(session: Session, task_id: int) -> Task:
    """The task, or :class:`TaskNotFound`."""
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(f"task {task_id} does not exist")
    return task


@dataclass(frozen=True, kw_only=True)
class PriorityQuery(PageQuery):
    """The priority list: the most uncertain first, unlabeled unless asked."""

    only_unlabeled: bool = param(ONLY_UNLABELED)


@dataclass(frozen=True, kw_only=True)
class MyTasksQuery(PageQuery):
    """An annotator's own tasks, filtered."""

    dataset_id: int | None = param(DATASET_FILTER)
    status: str | None = param(STATUS_FILTER)


def _paginate(session: Session, stmt: Select[Any], page: int, per_page: int) -> Page[Task]:
    """No total: counting a dataset's tasks would cost more than the page (millions of rows)."""
    return paginate(session, stmt, page, min(per_page, MAX_PAGE_SIZE))


def parse_status(value: str | None) -> TaskStatus | None:
    """A TaskStatus from a query string value; Invalid with the allowed values otherwise."""
    if value in (None, "", "all"):
        return None
    try:
        return TaskStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in TaskStatus)
        raise Invalid(f"status must be one of: {allowed}") from None


def readable() -> Any:
    """Tasks whose text is not waiting for de-identification: the ones people may be shown."""
    return ~exists().where(Item.id == Task.item_id, Item.pii_status == "pending")


def annotator_tasks(
    session: Session,
    user: User,
    *,
    status: TaskStatus | None = None,
    dataset_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """The user's own tasks (and those shared with them for agreement), highest priority first;
    none whose text waits for de-identification (a policy attached after import)."""
    stmt = select(Task).options(joinedload(Task.item)).where(_mine(user), readable())
    # As the annotator sees them: "assigned" is what they still have to do and "labeled" what they
    # answered, so a shared task (agreement, hidden gold) never shows someone else's progress.
    if status == TaskStatus.ASSIGNED:
        stmt = stmt.where(to_do(user))
    elif status == TaskStatus.LABELED:
        stmt = stmt.where(done_by(user), Task.status != TaskStatus.DELETED)
    elif status is not None:
        stmt = stmt.where(Task.status == status)
    else:
        stmt = stmt.where(Task.status != TaskStatus.DELETED)
    if dataset_id is not None:
        stmt = stmt.where(Task.dataset_id == dataset_id)
    return _paginate(session, stmt.order_by(Task.priority.desc(), Task.id), page, per_page)


def admin_tasks(
    session: Session,
    *,
    task_id: int | None = None,
    dataset_id: int | None = None,
    status: TaskStatus | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    label: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """All tasks with filters, highest priority first."""
    stmt = select(Task).options(joinedload(Task.item), joinedload(Task.assignee))
    if task_id is not None:
        stmt = stmt.where(Task.id == task_id)
    if dataset_id is not None:
        stmt = stmt.where(Task.dataset_id == dataset_id)
    if status is not None:
        stmt = stmt.where(Task.status == status)
    if unassigned:
        stmt = stmt.where(Task.assigned_to.is_(None))
    elif assignee_id is not None:
        stmt = stmt.where(Task.assigned_to == assignee_id)
    if label:
        stmt = stmt.where(Task.label == label)
    return _paginate(session, stmt.order_by(Task.priority.desc(), Task.id), page, per_page)


def priority_tasks(session: Session, dataset_id: int, *, limit: int = 50, only_unlabeled: bool = True) -> list[Task]:
    """The seed's "high-priority task list": priority desc, unlabeled by default."""
    return priority_page(session, dataset_id, PriorityQuery(limit=limit, only_unlabeled=only_unlabeled)).items


def priority_page(session: Session, dataset_id: int, query: PriorityQuery) -> Page[Task]:
    """One page of the priority list (no total: a dataset may hold millions of tasks)."""
    stmt = select(Task).options(joinedload(Task.item)).where(Task.dataset_id == dataset_id)
    if query.only_unlabeled:
        stmt = stmt.where(Task.status.in_([TaskStatus.IMPORTED, TaskStatus.ASSIGNED]))
    else:
        stmt = stmt.where(Task.status != TaskStatus.DELETED)
    return paginate(session, stmt.order_by(Task.priority.desc(), Task.id), query.page, query.limit)


def _mine(user: User) -> Any:
    shared = select(ExtraAssignee.task_id).where(ExtraAssignee.user_id == user.id)
    return or_(Task.assigned_to == user.id, Task.id.in_(shared))


def _shared_to_do(user: User) -> Any:
    """Tasks shared with the user for agreement that they have not labeled yet."""
    labeled_by_me = select(Annotation.id).where(Annotation.task_id == Task.id, Annotation.annotator_id == user.id)
    answered = select(GoldAnswer.id).where(GoldAnswer.task_id == Task.id, GoldAnswer.user_id == user.id)
    return and_(
        Task.id.in_(select(ExtraAssignee.task_id).where(ExtraAssignee.user_id == user.id)),
        Task.status != TaskStatus.DELETED,
        ~exists(labeled_by_me),
        ~exists(answered),
    )


def to_do(user: User) -> Any:
    """The user's tasks still to label, as they see it: their own assigned ones, shared ones
    (agreement, hidden gold) they have not answered, and ones a reviewer sent back."""
    return or_(
        and_(Task.assigned_to == user.id, Task.status == TaskStatus.ASSIGNED), _shared_to_do(user), returned(user)
    )


def done_by(user: User) -> Any:
    """Tasks the user has answered (a label, or a gold check's answer), whatever the task's status."""
    return or_(
        exists().where(Annotation.task_id == Task.id, Annotation.annotator_id == user.id),
        exists().where(GoldAnswer.task_id == Task.id, GoldAnswer.user_id == user.id),
    )


def sent_back(user_id: int) -> tuple[Any, ...]:
    """The user's annotations a reviewer rejected and they have not answered again: the one
    rule behind their returned tasks here and the returned list of include.services.review."""
    return (
        Annotation.annotator_id == user_id,
        Annotation.review == "rejected",
        Annotation.label == Annotation.reviewed_label,
    )


def returned(user: User) -> Any:
    """Tasks where a reviewer rejected the user's label and they have not answered again
    (include.services.review): they are to do again, whatever the task's status."""
    return Task.id.in_(select(Annotation.task_id).where(*sent_back(user.id)))


def next_task(session: Session, user: User, *, exclude_id: int | None = None) -> Task | None:
    """The user's next task to label: one a reviewer sent back first, then their highest-priority
    task (their own, or one shared with them)."""
    back = (
        select(Task)
        .where(returned(user), Task.status != TaskStatus.DELETED, readable())
        .order_by(Task.priority.desc(), Task.id)
        .limit(1)
    )
    if exclude_id is not None:
        back = back.where(Task.id != exclude_id)
    first = session.scalar(back)
    if first is not None:
        return first
    own = (
        select(Task)
        .where(Task.assigned_to == user.id, Task.status == TaskStatus.ASSIGNED, readable())
        .order_by(Task.priority.desc(), Task.id)
        .limit(1)
    )
    shared = select(Task).where(_shared_to_do(user), readable()).order_by(Task.priority.desc(), Task.id).limit(1)
    if exclude_id is not None:
        own, shared = own.where(Task.id != exclude_id), shared.where(Task.id != exclude_id)
    candidates = [t for t in (session.scalar(own), session.scalar(shared)) if t is not None]
    return max(candidates, key=lambda t: (t.priority, -t.id)) if candidates else None


def shared_to_do(session: Session, user: User) -> int:
    return int(session.scalar(select(func.count(Task.id)).where(_shared_to_do(user))) or 0)


def my_answers(session: Session, user: User, task_ids: list[int]) -> dict[int, str]:
    """The user's own answer on each of these tasks (their label, or a gold check's answer):
    what their pages show, never the task's consensus label, which may be someone else's."""
    if not task_ids:
        return {}
    mine = {
        int(t): str(lbl)
        for t, lbl in session.execute(
            select(Annotation.task_id, Annotation.label).where(
                Annotation.task_id.in_(task_ids),
                Annotation.annotator_id == user.id,
                Annotation.label.is_not(None),
                Annotation.ground_truth.is_(False),
            )
        ).tuples()
    }
    for t, lbl in session.execute(
        select(GoldAnswer.task_id, GoldAnswer.label).where(
            GoldAnswer.task_id.in_(task_ids), GoldAnswer.user_id == user.id
        )
    ).tuples():
        mine[int(t)] = str(lbl)
    return mine


def as_seen_by(session: Session, user: User, tasks: list[Task]) -> dict[int, tuple[str, str | None]]:
    """Each task's (status, label) as ``user`` sees them: their own answer, never the task's
    consensus label (a shared agreement or hidden gold task would show someone else's); a task a
    reviewer sent back is to do again."""
    ids = [t.id for t in tasks]
    answers = my_answers(session, user, ids)
    back = {int(i) for i in session.scalars(select(Task.id).where(Task.id.in_(ids), returned(user)))} if ids else set()
    views: dict[int, tuple[str, str | None]] = {}
    for t in tasks:
        mine = answers.get(t.id)
        if t.status == TaskStatus.DELETED:
            views[t.id] = ("deleted", mine)
        elif mine is None or t.id in back:
            views[t.id] = ("assigned", mine)
        else:
            views[t.id] = ("conflict" if t.status == TaskStatus.CONFLICT else "labeled", mine)
    return views
