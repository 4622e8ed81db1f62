"""Who labels what: single assignment, unassignment and priority-first auto-assignment.

Auto-assign locks the rows it takes with ``FOR UPDATE SKIP LOCKED``, so two admins assigning
at the same moment get disjoint tasks instead of one task going to two people.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from include.db.models import Role, Task, TaskStatus, User

MAX_AUTO_ASSIGN = 50_000


class AssignmentError(ValueError):
    """The assignment cannot be made; the message says why."""


def _check_assignee(user: User | None) -> User:
    if user is None:
        raise AssignmentError("no such user")
    if not user.active:
        raise AssignmentError(f"{user.username} is deactivated")
    if user.role != Role.ANNOTATOR:
        raise AssignmentError(f"{user.username} is not an annotator")
    return user


def assign_task(session: Session, task_id: int, user: User | None) -> Task:
    """Assign (or reassign) one unlabeled task."""
    user = _check_assignee(user)
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        raise AssignmentError(f"task {task_id} does not exist")
    if task.status not in (TaskStatus.IMPORTED, TaskStatus.ASSIGNED):
        raise AssignmentError(f"task {task_id} is {task.status.value}; only unlabeled tasks can be assigned")
    task.assigned_to = user.id
    task.assigned_at = datetime.now(UTC)
    task.status = TaskStatus.ASSIGNED
    session.flush()
    return task


def unassign_task(session: Session, task_id: int) -> Task:
    """Return an unlabeled task to the pool."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        raise AssignmentError(f"task {task_id} does not exist")
    if task.status != TaskStatus.ASSIGNED:
        raise AssignmentError(
            f"task {task_id} is {task.status.value}; only assigned, unlabeled tasks can be unassigned"
        )
    task.assigned_to = None
    task.assigned_at = None
    task.status = TaskStatus.IMPORTED
    session.flush()
    return task


_AUTO_ASSIGN = text(
    """
    WITH picked AS (
        SELECT id FROM tasks
        WHERE dataset_id = :dataset_id AND assigned_to IS NULL AND status = 'imported'
        ORDER BY priority DESC, id
        LIMIT :count
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks SET assigned_to = :user_id, assigned_at = now(), status = 'assigned', updated_at = now()
    WHERE tasks.id = ANY (ARRAY(SELECT id FROM picked))  -- primary-key lookups, not a join over the table
    RETURNING tasks.id
    """
)


def auto_assign(session: Session, dataset_id: int, user: User | None, count: int) -> list[int]:
    """Assign up to ``count`` of the dataset's highest-priority unassigned, unlabeled tasks."""
    user = _check_assignee(user)
    if not 1 <= count <= MAX_AUTO_ASSIGN:
        raise AssignmentError(f"count must be between 1 and {MAX_AUTO_ASSIGN}")
    return [
        int(i) for i in session.scalars(_AUTO_ASSIGN, {"dataset_id": dataset_id, "count": count, "user_id": user.id})
    ]


def unassign_all(session: Session, user_id: int, dataset_id: int | None = None) -> int:
    """Return a user's unlabeled tasks (in one dataset, or all) to the pool, e.g. when they leave."""
    stmt = update(Task).where(Task.assigned_to == user_id, Task.status == TaskStatus.ASSIGNED)
    if dataset_id is not None:
        stmt = stmt.where(Task.dataset_id == dataset_id)
    result = session.execute(stmt.values(assigned_to=None, assigned_at=None, status=TaskStatus.IMPORTED))
    return int(getattr(result, "rowcount", 0) or 0)
