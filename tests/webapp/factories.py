"""Rows for web app tests that do not need Label Studio (tasks carry made-up Label Studio ids)."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from include.db.models import Item, Task, TaskStatus
from include.db.session import session_scope
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC

_ls_ids = itertools.count(10_000_000)


def dataset_with_tasks(db: str, name: str, n: int, *, priorities: list[int] | None = None) -> tuple[int, list[int]]:
    """A dataset of n items with shadow tasks; returns (dataset id, task ids by item order)."""
    with session_scope(db) as s:
        ds = create_dataset(s, name, labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [(f"{name} text {i}", {}) for i in range(n)])
        item_ids = s.scalars(select(Item.id).where(Item.dataset_id == ds.id).order_by(Item.id)).all()
        ds.ls_project_id = 999_999
        tasks = [
            Task(
                dataset_id=ds.id,
                item_id=i,
                ls_project_id=999_999,
                ls_task_id=next(_ls_ids),
                status=TaskStatus.IMPORTED,
                priority=(priorities[k] if priorities else 0),
            )
            for k, i in enumerate(item_ids)
        ]
        s.add_all(tasks)
        s.flush()
        return ds.id, [t.id for t in tasks]
