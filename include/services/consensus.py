"""How a task's annotations decide its label: agreement labels it, disagreement is a conflict,
and a ground-truth annotation (an admin's resolution) settles it. A label a reviewer rejected
does not count; one a reviewer accepted or fixed makes the label "reviewed"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Annotation, Task, TaskStatus

SINGLE, AGREED, REVIEWED = "single", "agreed", "reviewed"


@dataclass(frozen=True)
class Vote:
    label: str | None
    cancelled: bool = False
    ground_truth: bool = False
    updated_at: datetime | None = None
    review: str | None = None  # the review that still holds for this label (review.holding)
    who: int | str | None = None  # the annotator (platform user id, else Label Studio e-mail)


class Decision(NamedTuple):
    status: TaskStatus | None
    label: str | None
    basis: str | None  # SINGLE, AGREED or REVIEWED; None without a label


def decide(votes: Sequence[Vote]) -> Decision:
    """(LABELED, label, basis), (CONFLICT, None, None), or (None, None, None) when no vote counts."""
    usable = [v for v in votes if v.label and not v.cancelled and v.review != "rejected"]
    if not usable:
        return Decision(None, None, None)
    truth = [v for v in usable if v.ground_truth]
    if truth:
        newest = max(truth, key=lambda v: v.updated_at or datetime.min)
        return Decision(TaskStatus.LABELED, newest.label, REVIEWED)
    labels = {v.label for v in usable}
    if len(labels) == 1:
        label = labels.pop()
        if any(v.review in ("accepted", "fixed") for v in usable):
            return Decision(TaskStatus.LABELED, label, REVIEWED)
        people = {v.who for v in usable if v.who is not None}  # one person twice is no agreement
        return Decision(TaskStatus.LABELED, label, AGREED if len(people) >= 2 else SINGLE)
    reviewed = {v.label for v in usable if v.review in ("accepted", "fixed")}
    if len(reviewed) == 1:  # a reviewer settled a disagreement
        return Decision(TaskStatus.LABELED, reviewed.pop(), REVIEWED)
    return Decision(TaskStatus.CONFLICT, None, None)


def holding(review: str | None, reviewed_label: str | None, label: str | None) -> str | None:
    """The review that still holds for ``label``: a review is of one label, and a new label from
    the annotator (in the web app or in Label Studio) puts the annotation back in the queue."""
    return review if review is not None and reviewed_label == label else None


def vote_of(annotation: Annotation) -> Vote:
    """An annotation row as a vote."""
    return Vote(
        label=annotation.label,
        cancelled=annotation.was_cancelled,
        ground_truth=annotation.ground_truth,
        updated_at=annotation.updated_at,
        review=holding(annotation.review, annotation.reviewed_label, annotation.label),
        who=annotation.annotator_id if annotation.annotator_id is not None else annotation.ls_user_email,
    )


def decide_task(session: Session, task: Task) -> Decision:
    """Set ``task``'s status, label and basis from its annotation rows; returns the decision.
    Without a counting label the task is to do again (assigned, or back in the pool)."""
    rows = session.scalars(
        select(Annotation).where(Annotation.task_id == task.id).execution_options(populate_existing=True)
    )
    decision = decide([vote_of(a) for a in rows])
    status = decision.status
    if status is None:
        status = TaskStatus.ASSIGNED if task.assigned_to is not None else TaskStatus.IMPORTED
    task.status, task.label, task.label_basis = status, decision.label, decision.basis
    return decision
