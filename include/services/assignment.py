"""Who labels what: single assignment, unassignment and hardest-first (optionally diverse) auto-assignment.

Auto-assign locks the rows it takes with ``FOR UPDATE SKIP LOCKED``, so two admins assigning
at the same moment get disjoint tasks instead of one task going to two people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from include.db.models import HOLDING_FLAGS, Dataset, ExtraAssignee, Role, Task, TaskStatus, User
from include.errors import Invalid
from include.ml.batch import BATCH_STRATEGIES, BATCH_STRATEGY
from include.params import ParamSpec, Values, param
from include.services.batch_selection import diverse_task_ids
from include.services.task_queries import TaskNotFound

MAX_AUTO_ASSIGN = 50_000

OVERLAP_SHARE = ParamSpec(
    "overlap_share", "Second annotator", "float", 0.0, minimum=0, maximum=1, percent=True,
    help="share of each auto-assignment also given to a second annotator, so the two can be compared",
)  # fmt: skip
ASSIGNEE = ParamSpec("username", "Annotator", "annotator", max_length=64)
ASSIGN_COUNT = ParamSpec("count", "Tasks", "int", minimum=1, maximum=MAX_AUTO_ASSIGN, nullable=False)


@dataclass(frozen=True, kw_only=True)
class OverlapSettings(Values):
    """How much of each auto-assignment a second annotator also gets (for agreement)."""

    overlap_share: float = param(OVERLAP_SHARE)


@dataclass(frozen=True, kw_only=True)
class AutoAssignRequest(Values):
    """Who gets how many of the hardest unassigned tasks, and how the batch is chosen."""

    username: str = param(ASSIGNEE)
    count: int = param(ASSIGN_COUNT)
    strategy: str = param(BATCH_STRATEGY)


class AssignmentError(Invalid):
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
        raise TaskNotFound(f"task {task_id} does not exist")
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
        raise TaskNotFound(f"task {task_id} does not exist")
    if task.status != TaskStatus.ASSIGNED:
        raise AssignmentError(
            f"task {task_id} is {task.status.value}; only assigned, unlabeled tasks can be unassigned"
        )
    task.assigned_to = None
    task.assigned_at = None
    task.status = TaskStatus.IMPORTED
    session.flush()
    return task


# A task flagged by this annotator (skip, not sure, any flag: include.services.flags) or held by
# anyone's open flag is never auto-assigned to them; {task} is the tasks table's alias.
NOT_FLAGGED = f"""NOT EXISTS (
    SELECT 1 FROM task_flags f
    WHERE f.task_id = {{task}}.id AND f.resolved_at IS NULL
      AND (f.user_id = :user_id OR f.kind IN ({", ".join(repr(k) for k in HOLDING_FLAGS)})))"""

_AUTO_ASSIGN = text(
    f"""
    WITH picked AS (
        SELECT id FROM tasks
        WHERE dataset_id = :dataset_id AND assigned_to IS NULL AND status = 'imported'
          AND {NOT_FLAGGED.format(task="tasks")}
        ORDER BY priority DESC, id
        LIMIT :count
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks SET assigned_to = :user_id, assigned_at = now(), status = 'assigned', updated_at = now()
    WHERE tasks.id = ANY (ARRAY(SELECT id FROM picked))  -- primary-key lookups, not a join over the table
    RETURNING tasks.id
    """
)


_ASSIGN_IDS = text(
    f"""
    WITH picked AS (
        SELECT id FROM tasks WHERE id = ANY (:ids) AND assigned_to IS NULL AND status = 'imported'
          AND {NOT_FLAGGED.format(task="tasks")}
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks SET assigned_to = :user_id, assigned_at = now(), status = 'assigned', updated_at = now()
    WHERE tasks.id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING tasks.id
    """
)


# Tasks another annotator already has, highest priority first, that nobody shares yet: the
# second annotator's share of an auto-assignment (overlap, for agreement).
_OVERLAP = text(
    f"""
    WITH picked AS (
        SELECT t.id FROM tasks t
        WHERE t.dataset_id = :dataset_id AND t.assigned_to IS NOT NULL AND t.assigned_to <> :user_id
          AND t.status IN ('assigned', 'labeled')
          AND NOT EXISTS (SELECT 1 FROM task_extra_assignees x WHERE x.task_id = t.id)
          AND {NOT_FLAGGED.format(task="t")}
        ORDER BY t.priority DESC, t.id
        LIMIT :count
        FOR UPDATE SKIP LOCKED
    )
    INSERT INTO task_extra_assignees (task_id, user_id) SELECT id, :user_id FROM picked
    ON CONFLICT DO NOTHING
    RETURNING task_id
    """
)


def apply_overlap(session: Session, dataset: Dataset, settings: OverlapSettings) -> str:
    """Set the dataset's overlap; returns the sentence that confirms it."""
    dataset.overlap_share = settings.overlap_share
    return f"{settings.overlap_share:.0%} of each auto-assignment will also go to a second annotator."


def auto_assign_request(session: Session, dataset: Dataset, request: AutoAssignRequest) -> list[int]:
    """:func:`auto_assign` as a person asks for it (by username, with the dataset's overlap)."""
    user = session.scalar(select(User).where(User.username == request.username))
    return auto_assign(
        session, dataset.id, user, request.count, overlap_share=dataset.overlap_share, strategy=request.strategy
    )


def auto_assign(
    session: Session,
    dataset_id: int,
    user: User | None,
    count: int,
    *,
    overlap_share: float = 0.0,
    strategy: str = BATCH_STRATEGY.default,
) -> list[int]:
    """Assign up to ``count`` of the dataset's unassigned, unlabeled tasks, hardest first.

    ``strategy`` ``top`` takes them strictly by priority; ``diverse`` takes the most uncertain
    spread over clusters of similar texts (cluster representatives before any model), falling
    back to priority order where there are no embeddings to cluster. With ``overlap_share`` that
    share of them are tasks another annotator already has, given to this one as well, so the
    two can be compared (agreement).
    """
    user = _check_assignee(user)
    if not 1 <= count <= MAX_AUTO_ASSIGN:
        raise AssignmentError(f"count must be between 1 and {MAX_AUTO_ASSIGN}")
    if not 0 <= overlap_share <= 1:
        raise AssignmentError("the overlap share must be between 0 and 1")
    if strategy not in BATCH_STRATEGIES:
        raise AssignmentError(f"strategy must be one of {', '.join(BATCH_STRATEGIES)}")
    shared: list[int] = []
    if overlap_share > 0:
        wanted = round(count * overlap_share)
        if wanted:
            shared = [
                int(i)
                for i in session.scalars(_OVERLAP, {"dataset_id": dataset_id, "count": wanted, "user_id": user.id})
            ]
    wanted = count - len(shared)
    chosen = diverse_task_ids(session, dataset_id, wanted) if strategy == "diverse" and wanted > 1 else None
    taken: list[int] = []
    if chosen:
        got = {int(i) for i in session.scalars(_ASSIGN_IDS, {"ids": chosen, "user_id": user.id})}
        taken = [i for i in chosen if i in got]  # another admin may have taken some meanwhile
    fresh = []
    if wanted - len(taken) > 0:
        params = {"dataset_id": dataset_id, "count": wanted - len(taken), "user_id": user.id}
        fresh = [int(i) for i in session.scalars(_AUTO_ASSIGN, params)]
    from include.services import gold  # gold -> eval_set -> task_queries: imported when assigning

    dataset = session.get(Dataset, dataset_id)
    if dataset is not None and (taken or fresh):
        gold.top_up(session, dataset, user)  # hidden: not in the answer, which the admin may share
    return taken + fresh + shared


def may_label(session: Session, task: Task, user: User) -> bool:
    """The task is the user's: assigned to them, or shared with them for agreement."""
    if task.assigned_to == user.id:
        return True
    return session.get(ExtraAssignee, (task.id, user.id)) is not None


def unassign_all(session: Session, user_id: int, dataset_id: int | None = None) -> int:
    """Return a user's unlabeled tasks (in one dataset, or all) to the pool, e.g. when they leave."""
    stmt = update(Task).where(Task.assigned_to == user_id, Task.status == TaskStatus.ASSIGNED)
    if dataset_id is not None:
        stmt = stmt.where(Task.dataset_id == dataset_id)
    result = session.execute(stmt.values(assigned_to=None, assigned_at=None, status=TaskStatus.IMPORTED))
    return int(getattr(result, "rowcount", 0) or 0)
