"""The next batch of a dataset's unassigned tasks: uncertain and diverse, or representative at a cold start.

The clustering itself is :mod:`include.ml.batch`; this module reads the candidates (the
highest-priority unassigned tasks, index-ordered) and their stored embeddings. It falls back to
plain priority order where there is nothing to cluster: no embeddings yet, or a batch too large
to cluster in the time an admin waits for a page (then the first ``MAX_DIVERSE`` are diverse).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from include.ml.batch import COLD_SAMPLE, POOL_FACTOR, diverse_batch, representatives
from include.services.registry import promoted_model
from include.services.vectors import load_vectors

# k-means with k = batch size, on one core: 300 takes 0.3 s scored and 2.4 s at a cold start, 1,000
# took 20 to 27 s. Beyond it, the rest of a batch is priority order.
MAX_DIVERSE = 300

_CANDIDATES = text(
    """
    SELECT t.id, i.text_hash, t.uncertainty_score FROM tasks t JOIN items i ON i.id = t.item_id
    WHERE t.dataset_id = :dataset_id AND t.assigned_to IS NULL AND t.status = 'imported'
    ORDER BY t.priority DESC, t.id
    LIMIT :width
    """
)
_COLD = text(
    """
    SELECT t.id, i.text_hash, t.uncertainty_score FROM tasks t JOIN items i ON i.id = t.item_id
    WHERE t.dataset_id = :dataset_id AND t.assigned_to IS NULL AND t.status = 'imported'
    ORDER BY md5(i.text_hash || :seed)
    LIMIT :width
    """
)
_SCORED = text(
    "SELECT EXISTS (SELECT 1 FROM tasks WHERE dataset_id = :dataset_id AND uncertainty_score IS NOT NULL "
    "AND assigned_to IS NULL AND status = 'imported')"
)
# Without a promoted model: the embedding model that has most of the candidates' texts.
_MODEL = text(
    "SELECT model_id FROM embeddings WHERE text_hash = ANY(:hashes) "
    "GROUP BY model_id ORDER BY count(*) DESC, model_id LIMIT 1"
)


def _embedding_model(session: Session, dataset_id: int, hashes: list[str]) -> int | None:
    promoted = promoted_model(session, dataset_id)
    if promoted is not None and promoted.embedding_model_id is not None:
        return int(promoted.embedding_model_id)
    found = session.scalar(_MODEL, {"hashes": hashes[:500]})
    return int(found) if found is not None else None


def diverse_task_ids(session: Session, dataset_id: int, count: int, *, seed: int = 0) -> list[int] | None:
    """Task ids for the next ``count`` assignments, or None where plain priority order should be used.

    With uncertainty scores: the most uncertain, one per cluster (:func:`diverse_batch`). With
    none (no model yet): cluster representatives of a sample of the unassigned tasks.
    """
    picked = _pick(session, dataset_id, count, seed=seed)
    return picked[0] if picked else None


_DEMOTE = text(
    """
    UPDATE tasks SET priority = GREATEST(:floor - 1, 0), updated_at = now()
    WHERE id = ANY (:ids) AND priority >= :floor
    """
)


def diversify_queue_head(session: Session, dataset_id: int, size: int, *, seed: int = 0) -> int:
    """Make the first ``size`` tasks of the queue a diverse batch; returns how many were moved back.

    The most uncertain task of each cluster keeps its priority (``int(uncertainty * 1000)``);
    the other candidates at or above the lowest of those drop to just below it, so the queue's
    head (auto-assign ``top``, the priority list, annotators' next task) holds no near-duplicates.
    Their ``uncertainty_score`` is untouched, and the next scoring run starts afresh.
    """
    picked = _pick(session, dataset_id, size, seed=seed, scored_only=True)
    if not picked:
        return 0
    chosen, candidates = picked
    floor = session.scalar(text("SELECT min(priority) FROM tasks WHERE id = ANY (:ids)"), {"ids": chosen})
    others = sorted(set(candidates) - set(chosen))
    if floor is None or not others:
        return 0
    result = session.execute(_DEMOTE, {"ids": others, "floor": int(floor)})
    return int(getattr(result, "rowcount", 0) or 0)


def _pick(
    session: Session, dataset_id: int, count: int, *, seed: int = 0, scored_only: bool = False
) -> tuple[list[int], list[int]] | None:
    """(chosen task ids, candidate task ids), or None when there is nothing to cluster."""
    k = min(count, MAX_DIVERSE)
    if k < 2:
        return None
    scored = bool(session.scalar(_SCORED, {"dataset_id": dataset_id}))
    if scored_only and not scored:
        return None
    query, width = (_CANDIDATES, POOL_FACTOR * k) if scored else (_COLD, max(POOL_FACTOR * k, COLD_SAMPLE))
    rows = session.execute(query, {"dataset_id": dataset_id, "width": width, "seed": str(seed)}).all()
    if len(rows) <= k:
        return None
    model_id = _embedding_model(session, dataset_id, [r.text_hash for r in rows])
    if model_id is None:
        return None
    vectors = load_vectors(session, model_id, [r.text_hash for r in rows])
    rows = [r for r in rows if r.text_hash in vectors]
    if len(rows) <= k:
        return None
    x = np.stack([vectors[r.text_hash] for r in rows])
    if scored:
        scores = np.array([np.nan if r.uncertainty_score is None else r.uncertainty_score for r in rows])
        picked = diverse_batch(x, scores, k, seed=seed)
    else:
        picked = representatives(x, k, seed=seed)
    return [int(rows[i].id) for i in picked], [int(r.id) for r in rows]
