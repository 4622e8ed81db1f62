"""What a training run learns from: the labels (quality gate checked, evaluation set first,
frozen as a snapshot), and their vectors under one embedding model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Dataset, Item
from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.services import eval_set, quality, reliability, snapshots
from include.services.vectors import get_model, load_vectors


@dataclass
class TrainingSet:
    """What a head is trained on: vectors, label indices, and the text hashes they came from."""

    labels: list[str]
    hashes: list[str]
    x: np.ndarray
    y: np.ndarray
    embedding_model_id: int
    weights: np.ndarray | None = None  # each label's reliability (include.services.reliability)


@dataclass(frozen=True)
class Labels:
    """The labels of one training run: the evaluation set it must leave alone, the snapshot the
    model will trace to, and its (text hash, label) rows outside the evaluation set."""

    evaluation: eval_set.EvalSet
    snapshot_id: int | None
    examples: list[tuple[str, str]]
    weights: list[float] | None = None  # with the dataset's label_weights "reliability"


def training_labels(session: Session, dataset: Dataset) -> Labels:
    """The quality gate checked, new labels offered to the evaluation set first, then the labels
    frozen as a snapshot (so a model traces to exactly them) and its rows outside the set.

    Raises:
        QualityGateFailed: the dataset's latest quality report failed and nobody overrode it.
    """
    quality.require_passed(session, dataset, "training")
    evaluation = eval_set.refresh(session, dataset)
    try:
        snapshot_id: int | None = snapshots.take(session, dataset).snapshot.id
    except snapshots.SnapshotError:
        snapshot_id = None
    examples = snapshots.training_examples(session, snapshot_id, dataset.train_labels) if snapshot_id else []
    if dataset.label_weights == "reliability" and examples:
        examples, weights = reliability.weighted(session, dataset, examples)
        return Labels(evaluation, snapshot_id, examples, weights)
    return Labels(evaluation, snapshot_id, examples)


def reserve_training(session: Session, dataset_id: int, examples: list[tuple[str, str]]) -> None:
    """The run's training texts may never join the evaluation set from now on, not only once
    training ends: an evaluation refresh during a long run (a fine-tune takes many minutes) would
    otherwise admit them, and the candidate would be judged on texts it learned."""
    eval_set.mark_trained(session, dataset_id, [h for h, _ in examples])


def texts_of(session: Session, dataset_id: int, hashes: list[str]) -> dict[str, str]:
    """The (de-identified) texts of the dataset's items by text hash."""
    rows = session.execute(
        select(Item.text_hash, Item.text).where(
            Item.dataset_id == dataset_id, Item.text_hash.in_(hashes), Item.pii_status != "pending"
        )
    ).tuples()
    return {str(h): str(t) for h, t in rows}


def load_training_set(
    db_url: str,
    embedder: Embedder,
    examples: list[tuple[str, str]],
    labels: list[str],
    weights: list[float] | None = None,
) -> TrainingSet:
    """The examples' vectors under ``embedder`` (the dataset was just embedded with it)."""
    with session_scope(db_url) as session:
        model = get_model(session, embedder.name)
        if model is None:
            raise RuntimeError(f"{embedder.name} is not registered although the dataset was just embedded")
        vectors = load_vectors(session, model.id, [h for h, _ in examples])
        model_id = model.id
    present = [k for k, (h, _) in enumerate(examples) if h in vectors]
    kept = [examples[k] for k in present]
    return TrainingSet(
        labels=labels,
        hashes=[h for h, _ in kept],
        x=np.stack([vectors[h] for h, _ in kept]),
        y=np.asarray([labels.index(label) for _, label in kept], dtype=np.int64),
        embedding_model_id=model_id,
        weights=None if weights is None else np.asarray([weights[k] for k in present], dtype=np.float64),
    )
