"""What counts: which labels may train a model, and which may judge models in the evaluation set.

A task's label rests on one annotator ("single"), on two or more who agree ("agreed"), or on a
reviewer who accepted or fixed it or an admin who resolved a conflict ("reviewed"); the task
keeps that as ``label_basis`` (include.services.consensus). Each dataset says, for training and
for evaluation, which of those count:

* ``any``: every submitted label (today's behaviour for training);
* ``agreed_or_reviewed``: two annotators agree, or a reviewer accepted it (the default for the
  evaluation set: a model is judged only on labels someone checked);
* ``reviewed``: only what a reviewer accepted or fixed.

Evaluation members are chosen from every label (so training leaves them out at once) and judge
models only once their label counts: an unchecked member waits in the review queue's
"evaluation items" filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import true
from sqlalchemy.orm import Session

from include.db.models import Dataset, Task
from include.params import ParamSpec, Values, param
from include.services.consensus import AGREED, REVIEWED

ANY, AGREED_OR_REVIEWED, REVIEWED_ONLY = "any", "agreed_or_reviewed", "reviewed"
POLICIES = (ANY, AGREED_OR_REVIEWED, REVIEWED_ONLY)
HELP = (
    "any: every submitted label; agreed_or_reviewed: two annotators agree or a reviewer accepted; "
    "reviewed: only reviewed labels"
)

TRAIN_LABELS = ParamSpec("train_labels", "Labels that train", "choice", ANY, choices=POLICIES, help=HELP)
EVAL_LABELS = ParamSpec(
    "eval_labels", "Labels that judge models", "choice", AGREED_OR_REVIEWED, choices=POLICIES, help=HELP
)


def counts(policy: str) -> Any:
    """A WHERE clause on ``Task`` for labels that count under ``policy``."""
    if policy == REVIEWED_ONLY:
        return Task.label_basis == REVIEWED
    if policy == AGREED_OR_REVIEWED:
        return Task.label_basis.in_((AGREED, REVIEWED))
    return true()


def basis_counts(policy: str, basis: str | None) -> bool:
    """The same rule as :func:`counts`, for a basis in hand."""
    if policy == REVIEWED_ONLY:
        return basis == REVIEWED
    if policy == AGREED_OR_REVIEWED:
        return basis in (AGREED, REVIEWED)
    return True


LABEL_WEIGHTS = ParamSpec(
    "label_weights", "Label weights", "choice", "off", choices=("off", "reliability"),
    help="reliability: train on each task's most likely label (overlap, gold and reviews weighed per annotator), "
    "weighted by how sure that is (the logistic head; the MLP takes the labels unweighted)",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class WhatCounts(Values):
    """Which labels train and judge models, and whether training weighs them by reliability
    (include.services.reliability)."""

    train_labels: str = param(TRAIN_LABELS)
    eval_labels: str = param(EVAL_LABELS)
    label_weights: str = param(LABEL_WEIGHTS)


def apply_settings(session: Session, dataset: Dataset, values: WhatCounts) -> str:
    """Save what counts; it applies from the next training run and gate."""
    dataset.train_labels, dataset.eval_labels = values.train_labels, values.eval_labels
    dataset.label_weights = values.label_weights
    session.flush()
    weights = "weighted by reliability" if values.label_weights == "reliability" else "unweighted"
    return (
        f"What counts saved: training uses {values.train_labels} labels ({weights}), "
        f"evaluation {values.eval_labels} labels."
    )
