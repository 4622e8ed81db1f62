"""Statistics from the ``task_counts`` counters: a few rows per dataset, whatever its size."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from include.db.models import Dataset, Task, TaskCount, TaskStatus, User

LIVE = ("imported", "assigned", "labeled", "conflict")


def _rows(session: Session, *where: Any) -> list[tuple[int, int, str, str, int]]:
    return [
        (int(d), int(a), s, lbl, int(n))
        for d, a, s, lbl, n in session.execute(
            select(TaskCount.dataset_id, TaskCount.assignee_id, TaskCount.status, TaskCount.label, TaskCount.n).where(
                TaskCount.n != 0, *where
            )
        ).tuples()
    ]


def dataset_stats(session: Session, dataset: Dataset) -> dict[str, Any]:
    """Totals for one dataset: items, imported, assigned, labeled, per label, conflicts."""
    totals: dict[str, int] = defaultdict(int)
    labels: dict[str, int] = {label: 0 for label in dataset.labels}
    for _, assignee, status, label, n in _rows(session, TaskCount.dataset_id == dataset.id):
        totals[status] += n
        if status in LIVE and assignee:
            totals["assigned_any"] += n
        if status == "labeled" and label:
            labels[label] = labels.get(label, 0) + n
    imported = sum(totals[s] for s in LIVE)
    return {
        "items": dataset.item_count,
        "imported": imported,
        "not_imported": max(0, dataset.item_count - imported - totals["deleted"]),
        "assigned": totals["assigned_any"],
        "unassigned": imported - totals["assigned_any"],
        "pending": totals["imported"] + totals["assigned"],
        "labeled": totals["labeled"],
        "conflicts": totals["conflict"],
        "deleted_in_ls": totals["deleted"],
        "labels": labels,
    }


def per_annotator_stats(session: Session, dataset_id: int | None = None) -> list[dict[str, Any]]:
    """Assigned / labeled / pending / conflicts / per-label counts for each annotator with tasks."""
    where = [TaskCount.assignee_id != 0]
    if dataset_id is not None:
        where.append(TaskCount.dataset_id == dataset_id)
    stats: dict[int, dict[str, Any]] = {}
    for _, assignee, status, label, n in _rows(session, *where):
        if status not in LIVE:
            continue
        entry = stats.setdefault(
            assignee, {"user_id": assignee, "assigned": 0, "labeled": 0, "pending": 0, "conflicts": 0, "labels": {}}
        )
        entry["assigned"] += n
        if status == "labeled":
            entry["labeled"] += n
            if label:
                entry["labels"][label] = entry["labels"].get(label, 0) + n
        elif status == "conflict":
            entry["conflicts"] += n
        else:
            entry["pending"] += n
    names = (
        dict(session.execute(select(User.id, User.username).where(User.id.in_(list(stats)))).tuples().all())
        if stats
        else {}
    )
    out = [entry | {"username": names.get(uid, f"user {uid}")} for uid, entry in stats.items()]
    return sorted(out, key=lambda e: e["username"])


def annotator_stats(session: Session, user: User, dataset_id: int | None = None) -> dict[str, Any]:
    """An annotator's own figures: assigned, labeled, pending, per label, and labeled today (UTC)."""
    rows = per_annotator_stats(session, dataset_id)
    mine = next((r for r in rows if r["user_id"] == user.id), None) or {
        "assigned": 0,
        "labeled": 0,
        "pending": 0,
        "conflicts": 0,
        "labels": {},
    }
    start_of_day = datetime.combine(datetime.now(UTC).date(), time.min, tzinfo=UTC)
    today_q = select(func.count(Task.id)).where(
        Task.assigned_to == user.id, Task.labeled_at >= start_of_day, Task.status == TaskStatus.LABELED
    )
    if dataset_id is not None:
        today_q = today_q.where(Task.dataset_id == dataset_id)
    from include.services.task_queries import shared_to_do

    shared = shared_to_do(session, user)
    return {
        "assigned": mine["assigned"] + shared,
        "labeled": mine["labeled"],
        "pending": mine["pending"] + shared,
        "shared_pending": shared,
        "conflicts": mine["conflicts"],
        "labels": mine["labels"],
        "today": int(session.scalar(today_q) or 0),
    }


def labels_per_day(session: Session, dataset_id: int, days: int = 30) -> dict[str, Any]:
    """Annotations per day and annotator over the last ``days`` days (UTC), for a stacked chart."""
    from datetime import timedelta

    from include.db.models import Annotation

    since = datetime.combine(datetime.now(UTC).date() - timedelta(days=days - 1), time.min, tzinfo=UTC)
    day = func.date_trunc("day", Annotation.created_at)
    who = func.coalesce(User.username, Annotation.ls_user_email, "unknown")
    rows = session.execute(
        select(day, who, func.count())
        .join(Task, Task.id == Annotation.task_id)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Task.dataset_id == dataset_id, Annotation.created_at >= since, Annotation.was_cancelled.is_(False))
        .group_by(day, who)
        .order_by(day, who)
    ).tuples()
    by_day: dict[str, dict[str, int]] = defaultdict(dict)
    people: list[str] = []
    for when, name, n in rows:
        key = when.strftime("%m-%d")
        by_day[key][str(name)] = int(n)
        if str(name) not in people:
            people.append(str(name))
    ordered = list(by_day)
    return {"days": ordered, "series": {name: [by_day[d].get(name, 0) for d in ordered] for name in people}}
