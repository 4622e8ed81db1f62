"""Label reliability on a dataset: who is right how often, which label each task most likely
has, and which labels are likely mistakes (include.ml.reliability does the estimate).

What it learns from:

* every submitted label (annotations that are not skips, an admin's resolution or a label a
  reviewer rejected), and every hidden-gold answer (include.services.gold);
* **known** labels that anchor it: gold items, and labels a reviewer accepted or fixed (or an
  admin resolved).

What it is used for:

* ``refresh`` marks the labels whose task's most likely label is another, with at least
  ``SUSPECT_AT`` confidence, as suspects: the review queue's "likely mistakes" filter;
* with the dataset's ``label_weights`` set to ``reliability``, training takes each task's most
  likely label and its probability as the label's weight (``weighted``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from include.db.models import Annotation, Dataset, GoldAnswer, Item, Task, TaskStatus, User
from include.services.consensus import REVIEWED, holding

SUSPECT_AT = 0.8  # the estimate is this sure the label is wrong: worth a reviewer's look


@dataclass
class DatasetReliability:
    """The estimate for one dataset."""

    task_ids: list[int]
    posterior: np.ndarray  # (tasks, labels)
    accuracy: dict[str, float] = field(default_factory=dict)  # username -> estimated accuracy
    suspects: dict[int, float] = field(default_factory=dict)  # annotation id -> P(label is wrong)


def estimate_dataset(session: Session, dataset: Dataset) -> DatasetReliability | None:
    """The Dawid-Skene estimate over the dataset's labels; None when it has none."""
    from include.ml.reliability import estimate

    labels = list(dataset.labels)
    rows = session.execute(
        select(
            Annotation.id,
            Annotation.task_id,
            Annotation.annotator_id,
            Annotation.ls_user_email,
            Annotation.label,
            Annotation.review,
            Annotation.reviewed_label,
            Annotation.ground_truth,
            Task.label,
            Task.label_basis,
        )
        .join(Task, Task.id == Annotation.task_id)
        .where(
            Task.dataset_id == dataset.id,
            Task.status.in_([TaskStatus.LABELED, TaskStatus.CONFLICT, TaskStatus.ASSIGNED, TaskStatus.IMPORTED]),
            Annotation.was_cancelled.is_(False),
            Annotation.label.in_(labels),
        )
    ).tuples()
    index: dict[int, int] = {}
    triples: list[tuple[int, Any, int]] = []
    known: dict[int, int] = {}
    judged: list[tuple[int, int, str]] = []  # (annotation id, task index, label) of annotators' labels
    for ann_id, task_id, who, email, label, review, reviewed_label, truth, task_label, basis in rows:
        i = index.setdefault(int(task_id), len(index))
        if truth:  # an admin's resolution: known, not an annotator's vote
            known[i] = labels.index(str(label))
            continue
        if holding(review, reviewed_label, label) == "rejected":
            continue
        triples.append((i, who if who is not None else f"ls:{email}", labels.index(str(label))))
        judged.append((int(ann_id), i, str(label)))
        if basis == REVIEWED and task_label in labels:
            known[i] = labels.index(str(task_label))
    for task_id, who, label, expected in session.execute(
        select(GoldAnswer.task_id, GoldAnswer.user_id, GoldAnswer.label, GoldAnswer.expected).where(
            GoldAnswer.dataset_id == dataset.id, GoldAnswer.label.in_(labels), GoldAnswer.expected.in_(labels)
        )
    ).tuples():
        i = index.setdefault(int(task_id), len(index))
        triples.append((i, who, labels.index(str(label))))
        known[i] = labels.index(str(expected))
    if not triples:
        return None
    result = estimate(len(index), len(labels), triples, known)
    names = {
        int(uid): str(name)
        for uid, name in session.execute(
            select(User.id, User.username).where(User.id.in_([a for a in result.confusion if isinstance(a, int)]))
        ).tuples()
    }
    accuracy = {names.get(a, str(a)) if isinstance(a, int) else str(a): result.accuracy(a) for a in result.confusion}
    suspects = {}
    for ann_id, i, label in judged:
        wrong = 1.0 - float(result.posterior[i, labels.index(label)])
        if wrong >= SUSPECT_AT:
            suspects[ann_id] = round(wrong, 4)
    task_ids = [t for t, _ in sorted(index.items(), key=lambda pair: pair[1])]
    return DatasetReliability(task_ids, result.posterior, accuracy, suspects)


def refresh(session: Session, dataset: Dataset) -> DatasetReliability | None:
    """Estimate and mark the dataset's likely mistakes for review (clearing older marks)."""
    # Two quality checks of one dataset at once take turns: their clear-then-mark would interleave.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('reliability'), :d)"), {"d": dataset.id})
    found = estimate_dataset(session, dataset)
    tasks = select(Task.id).where(Task.dataset_id == dataset.id)
    session.execute(
        update(Annotation)
        .where(Annotation.task_id.in_(tasks), Annotation.suspect.is_not(None))
        .values(suspect=None)
        .execution_options(synchronize_session=False)
    )
    if found is not None and found.suspects:
        session.execute(
            update(Annotation),
            [{"id": ann_id, "suspect": p} for ann_id, p in found.suspects.items()],
            execution_options={"synchronize_session": False},
        )
    session.flush()
    return found


def weighted(
    session: Session, dataset: Dataset, examples: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[float]]:
    """The examples (text hash, label) with each task's most likely label, and its weight."""
    found = estimate_dataset(session, dataset)
    if found is None:
        return list(examples), [1.0] * len(examples)
    by_hash = {
        str(h): int(t)
        for h, t in session.execute(
            select(Item.text_hash, Task.id)
            .join(Task, Task.item_id == Item.id)
            .where(Item.dataset_id == dataset.id, Item.text_hash.in_([h for h, _ in examples]))
        ).tuples()
    }
    position = {t: i for i, t in enumerate(found.task_ids)}
    out, weights = [], []
    for text_hash, label in examples:
        i = position.get(by_hash.get(text_hash, -1))
        if i is None:
            out.append((text_hash, label))
            weights.append(1.0)
            continue
        row = found.posterior[i]
        out.append((text_hash, dataset.labels[int(row.argmax())]))
        weights.append(float(row.max()))
    return out, weights
