"""Delete datasets or items in the platform and their tasks in Label Studio.

Label Studio goes first: if it fails, nothing is deleted in the platform and the action can
be retried. A project the platform created for the dataset is deleted whole; in a shared
project (LS_PROJECT_ID) only the dataset's tasks are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from include.db.models import Dataset, Item, LsProject, Task
from include.errors import Unavailable
from include.labelstudio.client import LabelStudioClient

log = logging.getLogger(__name__)
CHUNK = 5000


def _delete_ls_tasks(client: LabelStudioClient, project_id: int, ls_ids: Sequence[int]) -> int:
    deleted = 0
    for start in range(0, len(ls_ids), CHUNK):
        deleted += client.delete_tasks(project_id, ls_ids[start : start + CHUNK])
    return deleted


def delete_dataset(session: Session, client: LabelStudioClient | None, dataset: Dataset) -> int:
    """Delete a dataset, its items, tasks and annotations; returns Label Studio tasks removed."""
    removed = 0
    project_id = dataset.ls_project_id
    if project_id is not None:
        if client is None:
            raise Unavailable("Label Studio is not configured (LS_URL): cannot remove this dataset's tasks")
        state = session.get(LsProject, project_id)
        shared = session.scalar(
            select(func.count(Dataset.id)).where(Dataset.ls_project_id == project_id, Dataset.id != dataset.id)
        )
        if state is not None and state.owned and not shared:
            removed = int(session.scalar(select(func.count(Task.id)).where(Task.dataset_id == dataset.id)) or 0)
            client.delete_project(project_id)
            session.delete(state)
        else:
            ls_ids = list(session.scalars(select(Task.ls_task_id).where(Task.dataset_id == dataset.id)))
            removed = _delete_ls_tasks(client, project_id, ls_ids)
    session.delete(dataset)
    session.flush()
    log.info("deleted dataset %s (%s Label Studio tasks)", dataset.id, removed)
    return removed


def delete_items(session: Session, client: LabelStudioClient | None, dataset: Dataset, item_ids: Sequence[int]) -> int:
    """Delete some items of a dataset (and their Label Studio tasks); returns items deleted."""
    ids = list(session.scalars(select(Item.id).where(Item.dataset_id == dataset.id, Item.id.in_(list(item_ids)))))
    if not ids:
        return 0
    ls_ids = list(session.scalars(select(Task.ls_task_id).where(Task.item_id.in_(ids))))
    if ls_ids:
        if client is None or dataset.ls_project_id is None:
            raise Unavailable("Label Studio is not configured (LS_URL): cannot remove these items' tasks")
        _delete_ls_tasks(client, dataset.ls_project_id, ls_ids)
    session.execute(delete(Item).where(Item.id.in_(ids)))
    session.execute(update(Dataset).where(Dataset.id == dataset.id).values(item_count=Dataset.item_count - len(ids)))
    return len(ids)
