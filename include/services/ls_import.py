"""Import bookkeeping: which items still need a Label Studio task, and recovery after a crash.

Every task sent to Label Studio carries the platform's ``item_id`` in its data. Label Studio
does not deduplicate imports, so the platform makes imports idempotent itself: task rows are
written right after Label Studio returns their ids, and a run first looks for tasks Label Studio
created that the platform never recorded (a crash between the POST and the DB write) and
adopts them, deleting any second copy of the same item.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from include.db.models import Item, Task
from include.errors import Conflict
from include.labelstudio.client import LabelStudioClient, id_greater_than

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    adopted: int = 0
    duplicates_deleted: int = 0
    foreign: int = 0  # tasks without a platform item id (created in Label Studio by hand)


def task_payload(item_id: int, text: str, dataset_id: int) -> dict[str, Any]:
    """The Label Studio task for an item; ``item_id`` makes re-imports detectable."""
    return {"data": {"text": text, "item_id": item_id, "dataset_id": dataset_id}}


def stale_tasks(session: Session, dataset_id: int, *, after_id: int, limit: int) -> list[tuple[int, int, int, str]]:
    """(task id, Label Studio task id, item id, text) of tasks whose Label Studio data is older
    than their item's text, by task id."""
    rows = session.execute(
        select(Task.id, Task.ls_task_id, Item.id, Item.text)
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset_id, Task.ls_data_stale, Task.id > after_id, Item.pii_status != "pending")
        .order_by(Task.id)
        .limit(limit)
    ).tuples()
    return [(int(t), int(ls), int(i), str(text)) for t, ls, i, text in rows]


def mark_rewritten(session: Session, task_ids: list[int]) -> None:
    session.execute(update(Task).where(Task.id.in_(task_ids)).values(ls_data_stale=False))


def count_pending_items(session: Session, dataset_id: int) -> int:
    """Items of the dataset that have no Label Studio task yet (those waiting for
    de-identification too: the import then says it is blocked, rather than nothing to do)."""
    return int(
        session.scalar(
            select(func.count(Item.id))
            .outerjoin(Task, Task.item_id == Item.id)
            .where(Item.dataset_id == dataset_id, Task.id.is_(None))
        )
        or 0
    )


def pending_items(session: Session, dataset_id: int, *, after_item_id: int, limit: int) -> list[tuple[int, str]]:
    """The next ``limit`` items without a task, by id (keyset: each call starts after the last).

    An item still waiting for de-identification is never read, whatever the caller checked
    before: one uploaded during the import stays for the next run (fail closed)."""
    rows = session.execute(
        select(Item.id, Item.text)
        .outerjoin(Task, Task.item_id == Item.id)
        .where(Item.dataset_id == dataset_id, Task.id.is_(None), Item.id > after_item_id, Item.pii_status != "pending")
        .order_by(Item.id)
        .limit(limit)
    ).tuples()
    return [(int(i), str(t)) for i, t in rows]


# Arrays instead of a 5,000-row VALUES list: one small statement that compiles once and is cached.
_RECORD = text(
    """
    INSERT INTO tasks (dataset_id, item_id, ls_project_id, ls_task_id, status)
    SELECT :dataset_id, u.item_id, :project_id, u.ls_task_id, 'imported'
    FROM unnest(CAST(:items AS bigint[]), CAST(:ls_ids AS bigint[])) AS u(item_id, ls_task_id)
    ON CONFLICT DO NOTHING
    """
)


class ImportNotRecorded(Conflict):
    """Label Studio created tasks the platform could not record (their item has a task already,
    or the id is taken in the project): the run fails instead of counting them as imported."""


def record_imported(session: Session, dataset_id: int, project_id: int, pairs: Sequence[tuple[int, int]]) -> int:
    """Write task rows for (item_id, ls_task_id) pairs in one statement; returns rows written.

    Raises:
        ImportNotRecorded: fewer rows were written than Label Studio created tasks (nothing is
            written then; the next import's reconciliation removes the extra tasks).
    """
    if not pairs:
        return 0
    result = session.execute(
        _RECORD,
        {
            "dataset_id": dataset_id,
            "project_id": project_id,
            "items": [int(i) for i, _ in pairs],
            "ls_ids": [int(ls) for _, ls in pairs],
        },
    )
    written = int(getattr(result, "rowcount", 0) or 0)
    if written != len(pairs):
        raise ImportNotRecorded(
            f"Label Studio created {len(pairs)} tasks in project {project_id} but only {written} could be "
            "recorded: the others' items already have a task, or their ids are taken in the project "
            "(another import of the same dataset at once?); the next import reconciles them",
            created=len(pairs),
            recorded=written,
        )
    return written


def reconcile_unrecorded(
    session: Session, client: LabelStudioClient, dataset_id: int, project_id: int
) -> ReconcileReport:
    """Adopt Label Studio tasks newer than the newest recorded one whose item has no task row.

    Label Studio task ids only grow, so anything above the highest id the platform recorded for
    the project is either from an interrupted import or made by hand. A second task for an item
    that already has one is deleted from Label Studio, so an item is never labeled twice.
    """
    report = ReconcileReport()
    newest = session.scalar(select(func.max(Task.ls_task_id)).where(Task.ls_project_id == project_id)) or 0
    found: dict[int, list[int]] = {}
    for ls_task in client.iter_tasks(
        project_id, filters=[id_greater_than(newest)], fields="task_only", include=["id", "data"]
    ):
        data = ls_task.get("data") or {}
        item_id = data.get("item_id")
        if not isinstance(item_id, int) or data.get("dataset_id") != dataset_id:
            report.foreign += 1
            continue
        found.setdefault(item_id, []).append(int(ls_task["id"]))
    if not found:
        return report
    has_task = set(session.scalars(select(Task.item_id).where(Task.item_id.in_(list(found)))))
    existing_items = set(
        session.scalars(select(Item.id).where(Item.id.in_(list(found)), Item.dataset_id == dataset_id))
    )
    adopt: list[tuple[int, int]] = []
    extra: list[int] = []
    for item_id, ls_ids in found.items():
        ls_ids.sort()
        if item_id in has_task or item_id not in existing_items:
            extra.extend(ls_ids)
            continue
        adopt.append((item_id, ls_ids[0]))
        extra.extend(ls_ids[1:])
    if extra:
        report.duplicates_deleted = client.delete_tasks(project_id, extra)
        log.warning("deleted %d duplicate or orphaned Label Studio tasks in project %s", len(extra), project_id)
    report.adopted = record_imported(session, dataset_id, project_id, adopt)
    if report.adopted:
        log.warning("adopted %d Label Studio tasks from an interrupted import", report.adopted)
    return report
