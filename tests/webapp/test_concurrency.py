"""Two admins auto-assigning at the same moment never give one task to two people."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from include.db.models import Task, User
from include.db.session import session_scope
from include.services.assignment import auto_assign
from tests.webapp.factories import dataset_with_tasks


def test_concurrent_auto_assign_gives_disjoint_tasks(db, users) -> None:
    dataset_id, _ = dataset_with_tasks(db, "race", 500, priorities=[i % 1000 for i in range(500)])
    barrier = threading.Barrier(4)
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def admin_assigns(username: str, rounds: int) -> None:
        try:
            got: list[int] = []
            for _ in range(rounds):
                barrier.wait(timeout=30)  # all four start each round together
                with session_scope(db) as s:
                    user = s.scalar(select(User).where(User.username == username))
                    got += auto_assign(s, dataset_id, user, 40)
            results[username + str(threading.get_ident())] = got
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=admin_assigns, args=(name, 3)) for name in ("alice", "bob", "alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    every = [task for got in results.values() for task in got]
    assert len(every) == 4 * 3 * 40
    assert len(set(every)) == len(every), "a task was assigned twice"
    with session_scope(db) as s:
        assigned = s.scalar(select(func.count(Task.id)).where(Task.assigned_to.is_not(None)))
        # the 480 highest priorities went first
        lowest_taken = s.scalar(select(func.min(Task.priority)).where(Task.assigned_to.is_not(None)))
        highest_left = s.scalar(select(func.max(Task.priority)).where(Task.assigned_to.is_(None)))
    assert assigned == 480
    assert lowest_taken >= highest_left


def test_task_counters_stay_exact(db, users) -> None:
    """The trigger-maintained counters equal a fresh GROUP BY after mixed changes."""
    from sqlalchemy import text

    from include.db.models import TaskStatus
    from include.services.assignment import unassign_task

    dataset_id, tasks = dataset_with_tasks(db, "counters", 50)
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get(User, users["alice"]), 20)
        s.query(Task).filter(Task.id.in_(tasks[:5])).update(
            {"status": TaskStatus.LABELED, "label": "OK"}, synchronize_session=False
        )
        unassign_task(s, s.scalar(select(Task.id).where(Task.status == TaskStatus.ASSIGNED).limit(1)))
        s.query(Task).filter(Task.id.in_(tasks[40:])).delete(synchronize_session=False)
    with session_scope(db) as s:
        counters = s.execute(
            text("SELECT dataset_id, assignee_id, status, label, n FROM task_counts WHERE n <> 0 ORDER BY 1, 2, 3, 4")
        ).all()
        truth = s.execute(
            text(
                "SELECT dataset_id, coalesce(assigned_to, 0), status, coalesce(label, ''), count(*) FROM tasks "
                "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            )
        ).all()
    assert counters == truth
