"""Task lists for pages and the API, ordered by priority (hardest first), keyset-friendly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from include.db.models import Task, TaskStatus, User

MAX_PAGE_SIZE = 200


@dataclass
class Page:
    items: list[Task]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def _paginate(session: Session, stmt: Select[Any], page: int, per_page: int) -> Page:
    """Fetch one extra row to know whether a next page exists (no COUNT over millions of rows)."""
    page = max(1, page)
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    rows = list(session.scalars(stmt.offset((page - 1) * per_page).limit(per_page + 1)).unique())
    return Page(items=rows[:per_page], page=page, per_page=per_page, has_next=len(rows) > per_page)


def parse_status(value: str | None) -> TaskStatus | None:
    """A TaskStatus from a query string value; ValueError with the allowed values otherwise."""
    if value in (None, "", "all"):
        return None
    try:
        return TaskStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in TaskStatus)
        raise ValueError(f"status must be one of: {allowed}") from None


def annotator_tasks(
    session: Session,
    user: User,
    *,
    status: TaskStatus | None = None,
    dataset_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """The user's own tasks, highest priority first (index ix_tasks_assignee_status_priority)."""
    stmt = select(Task).options(joinedload(Task.item)).where(Task.assigned_to == user.id)
    stmt = stmt.where(Task.status == status) if status else stmt.where(Task.status != TaskStatus.DELETED)
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
    stmt = select(Task).options(joinedload(Task.item)).where(Task.dataset_id == dataset_id)
    if only_unlabeled:
        stmt = stmt.where(Task.status.in_([TaskStatus.IMPORTED, TaskStatus.ASSIGNED]))
    else:
        stmt = stmt.where(Task.status != TaskStatus.DELETED)
    limit = max(1, min(limit, 1000))
    return list(session.scalars(stmt.order_by(Task.priority.desc(), Task.id).limit(limit)).unique())


def next_task(session: Session, user: User, *, exclude_id: int | None = None) -> Task | None:
    """The user's highest-priority task still to label."""
    stmt = (
        select(Task)
        .where(Task.assigned_to == user.id, Task.status == TaskStatus.ASSIGNED)
        .order_by(Task.priority.desc(), Task.id)
        .limit(1)
    )
    if exclude_id is not None:
        stmt = stmt.where(Task.id != exclude_id)
    return session.scalar(stmt)
