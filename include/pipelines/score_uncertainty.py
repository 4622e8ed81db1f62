"""score_uncertainty: write model_prob, uncertainty_score and priority so the hardest tasks come
first in auto-assign and in the priority task list.

Probabilities come from the dataset's promoted classifier (over stored embeddings) when there
is one, otherwise from the pre-labels already on the tasks (similarity or LLM). Scores are
written with one ``UPDATE .. FROM unnest(...)`` per batch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from include.db.models import Item, Task, TaskStatus
from include.db.session import session_scope
from include.ml.embeddings.backends import EmbeddingBackend, backend_for
from include.ml.embeddings.store import get_model, load_vectors
from include.ml.registry import promoted_model
from include.ml.scoring import STRATEGIES, priority, uncertainty
from include.ml.training.model import TrainedHead
from include.pipelines.embed_items import embed_dataset
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services.datasets import get_dataset

log = logging.getLogger(__name__)

_WRITE = text(
    """
    UPDATE tasks SET model_prob = v.p, uncertainty_score = v.u, priority = v.pr, updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:p AS float8[]), CAST(:u AS float8[]), CAST(:pr AS int[]))
        AS v(id, p, u, pr)
    WHERE tasks.id = v.id
    """
)


def write_scores(session: Session, ids: list[int], probs: np.ndarray, strategy: str) -> np.ndarray:
    """Score rows of ``probs`` for task ``ids``; returns the uncertainties."""
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


def _tasks(
    session: Session, dataset_id: int, only_unlabeled: bool, after: int, limit: int
) -> list[tuple[int, str, Any]]:
    stmt = (
        select(Task.id, Item.text_hash, Task.prelabel_json)
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset_id, Task.id > after)
    )
    if only_unlabeled:
        stmt = stmt.where(Task.status.in_([TaskStatus.IMPORTED, TaskStatus.ASSIGNED]))
    else:
        stmt = stmt.where(Task.status != TaskStatus.DELETED)
    return [(int(i), str(h), p) for i, h, p in session.execute(stmt.order_by(Task.id).limit(limit)).tuples()]


def run_score_uncertainty(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int,
    strategy: str = "least_confidence",
    limit: int | None = None,
    only_unlabeled: bool = True,
    batch_size: int = 20_000,
    embedder: EmbeddingBackend | None = None,
) -> dict[str, Any]:
    """The ``score_uncertainty`` job for one dataset."""
    params = {"dataset_id": dataset_id, "strategy": strategy, "limit": limit, "only_unlabeled": only_unlabeled}
    with tracked_job(db_url, "score_uncertainty", run, dataset_id=dataset_id, params=params) as job:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}")
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            labels = list(dataset.labels)
            promoted = promoted_model(session, dataset_id)
            artifact = promoted.artifact_path if promoted else None
            source = promoted.version if promoted else "pre-labels"
        head = TrainedHead.load(Path(artifact)) if artifact and Path(artifact).exists() else None
        emb_id = None
        if head is not None:
            embedder = embedder or backend_for(head.embedding_model)
            embed_dataset(db_url, embedder, dataset_id)
            with session_scope(db_url) as session:
                emb = get_model(session, head.embedding_model)
                emb_id = emb.id if emb else None
        scored = skipped = high = 0
        total_unc = 0.0
        after = 0
        while limit is None or scored + skipped < limit:
            size = batch_size if limit is None else min(batch_size, limit - scored - skipped)
            with session_scope(db_url) as session:
                batch = _tasks(session, dataset_id, only_unlabeled, after, size)
                if not batch:
                    break
                after = batch[-1][0]
                if head is not None:
                    vectors = load_vectors(session, int(emb_id), [h for _, h, _ in batch])  # type: ignore[arg-type]
                    keep = [(i, h) for i, h, _ in batch if h in vectors]
                    if keep:
                        probs = head.predict_proba(np.stack([vectors[h] for _, h in keep]))
                        ids = [i for i, _ in keep]
                    else:
                        probs, ids = np.zeros((0, len(labels))), []
                else:
                    with_probs = [(i, p["probs"]) for i, _, p in batch if p and isinstance(p.get("probs"), dict)]
                    ids = [i for i, _ in with_probs]
                    probs = np.asarray([[float(pr.get(lbl, 0.0)) for lbl in labels] for _, pr in with_probs])
                skipped += len(batch) - len(ids)
                if ids:
                    unc = write_scores(session, ids, probs, strategy)
                    scored += len(ids)
                    total_unc += float(unc.sum())
                    high += int((priority(unc) >= 400).sum())
            job.progress(f"scored {scored} tasks from {source}", scored=scored)
        if scored == 0:
            if head is None:
                raise SkipStep("nothing to score from: no promoted classifier and no pre-labels yet")
            raise SkipStep("no tasks to score")
        message = f"scored {scored} tasks by {strategy} from {source}: mean uncertainty {total_unc / scored:.3f}"
        if skipped:
            message += f" ({skipped} without a prediction skipped)"
        job.done(message, scored=scored, skipped=skipped, high_priority=high)
        job.result = {"scored": scored, "skipped": skipped, "source": source, "strategy": strategy}
    return job.result
