"""How a task's annotations decide its label: agreement labels it, disagreement is a conflict,
and a ground-truth annotation (an admin's resolution) settles it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from include.db.models import TaskStatus


@dataclass(frozen=True)
class Vote:
    label: str | None
    cancelled: bool = False
    ground_truth: bool = False
    updated_at: datetime | None = None


def decide(votes: Sequence[Vote]) -> tuple[TaskStatus | None, str | None]:
    """(LABELED, label), (CONFLICT, None), or (None, None) when no vote carries a label."""
    usable = [v for v in votes if v.label and not v.cancelled]
    if not usable:
        return None, None
    truth = [v for v in usable if v.ground_truth]
    if truth:
        newest = max(truth, key=lambda v: v.updated_at or datetime.min)
        return TaskStatus.LABELED, newest.label
    labels = {v.label for v in usable}
    if len(labels) == 1:
        return TaskStatus.LABELED, labels.pop()
    return TaskStatus.CONFLICT, None
