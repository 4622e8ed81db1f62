"""Uncertainty scores in the shadow index: ``model_prob``, ``uncertainty_score`` and ``priority``."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from include.db.models import Item, Task, TaskStatus
from include.ml.scoring import priority, uncertainty
from include.services.prelabels import UNLABELED

_WRITE = text(
    """
    UPDATE tasks SET model_prob = v.p, uncertainty_score = v.u, priority = v.pr, updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:p AS float8[]), CAST(:u AS float8[]), CAST(:pr AS int[]))
        AS v(id, p, u, pr)
    WHERE tasks.id = v.id
    """
)


def tasks_to_score(
    session: Session,
    dataset_id: int,
    *,
    only_unlabeled: bool,
    after_id: int,
    limit: int,
    assigned: bool | None = None,
) -> list[tuple[int, str, Any]]:
    """(task id, text hash, pre-label JSON) by id (keyset), unlabeled only or every live task;
    ``assigned``: only tasks in someone's list (True) or in the pool (False)."""
    stmt = (
        select(Task.id, Item.text_hash, Task.prelabel_json)
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset_id, Task.id > after_id)
    )
    if assigned is not None:
        stmt = stmt.where(Task.assigned_to.is_not(None) if assigned else Task.assigned_to.is_(None))
    live = Task.status.in_(UNLABELED) if only_unlabeled else Task.status != TaskStatus.DELETED
    stmt = stmt.where(live)
    return [(int(i), str(h), p) for i, h, p in session.execute(stmt.order_by(Task.id).limit(limit)).tuples()]


def write_scores(session: Session, ids: list[int], probs: np.ndarray, strategy: str) -> np.ndarray:
    """Score rows of ``probs`` for task ``ids`` with one ``UPDATE .. FROM unnest``; returns the uncertainties."""
    unc = uncertainty(probs, strategy)
    session.execute(
        _WRITE,
        {
            "ids": ids,
            "p": probs.max(axis=1).astype(float).tolist(),
            "u": unc.astype(float).tolist(),
            "pr": priority(unc).astype(int).tolist(),
        },
    )
    return unc
