"""score_uncertainty: write model_prob, uncertainty_score and priority so the hardest tasks come
first in auto-assign and in the priority task list.

Probabilities come from the dataset's promoted classifier (over stored embeddings) when there
is one, otherwise from the pre-labels already on the tasks (similarity or LLM). Scores are
written with one ``UPDATE .. FROM unnest(...)`` per batch.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.ml.scoring import STRATEGY, priority
from include.ml.training.model import TrainedHead
from include.pipelines.catalog import ScoreValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.pipelines.training.embedding import embed_dataset
from include.services.batch_selection import diversify_queue_head
from include.services.datasets import get_dataset
from include.services.embedding_models import embedder_for
from include.services.registry import promoted_head
from include.services.scores import tasks_to_score, write_scores
from include.services.vectors import get_model, load_vectors

log = logging.getLogger(__name__)

HIGH_PRIORITY = 400  # the job message counts tasks at least this uncertain


class _ProbabilitySource:
    """Class probabilities for a batch of tasks: the promoted head over stored embeddings, or
    the probabilities the pre-labels recorded."""

    def __init__(self, labels: list[str], head: TrainedHead | None, embedding_model_id: int | None) -> None:
        self.labels, self.head, self.embedding_model_id = labels, head, embedding_model_id

    def probabilities(self, session: Any, batch: list[tuple[int, str, Any]]) -> tuple[list[int], np.ndarray]:
        if self.head is not None and self.embedding_model_id is not None:
            vectors = load_vectors(session, self.embedding_model_id, [h for _, h, _ in batch])
            keep = [(i, h) for i, h, _ in batch if h in vectors]
            if not keep:
                return [], np.zeros((0, len(self.labels)))
            return [i for i, _ in keep], self.head.predict_proba(np.stack([vectors[h] for _, h in keep]))
        with_probs = [(i, p["probs"]) for i, _, p in batch if p and isinstance(p.get("probs"), dict)]
        probs = np.asarray([[float(pr.get(lbl, 0.0)) for lbl in self.labels] for _, pr in with_probs])
        return [i for i, _ in with_probs], probs


def _source(db_url: str, dataset_id: int, embedder: Embedder | None) -> tuple[_ProbabilitySource, str]:
    """The probability source for the dataset and its name for messages."""
    with session_scope(db_url) as session:
        labels = list(get_dataset(session, dataset_id).labels)
        found = promoted_head(session, dataset_id)
    if found is None:
        return _ProbabilitySource(labels, None, None), "pre-labels"
    name, head = found
    embedder = embedder or embedder_for(head.embedding_model, db_url)
    embed_dataset(db_url, embedder, dataset_id)  # texts added since the last embedding run
    with session_scope(db_url) as session:
        model = get_model(session, head.embedding_model)
    return _ProbabilitySource(labels, head, model.id if model else None), name


def run_score_uncertainty(
    db_url: str,
    run: RunRef,
    values: ScoreValues,
    *,
    batch_size: int = 20_000,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """The ``score_uncertainty`` job for one dataset (``diverse_head``: see include.ml.batch)."""
    dataset_id, strategy, limit = values.dataset_id, values.strategy, values.limit
    only_unlabeled, diverse_head = values.only_unlabeled, values.diverse_head
    with tracked_job(db_url, "score_uncertainty", run, values) as job:
        STRATEGY.parse(strategy)
        source, name = _source(db_url, dataset_id, embedder)
        scored = skipped = high = 0
        total_unc = 0.0
        # Tasks already in annotators' lists first: the order people see changes within seconds,
        # before the (much larger) unassigned pool is rescored behind it.
        for assigned in (True, False):
            after = 0
            while limit is None or scored + skipped < limit:
                size = batch_size if limit is None else min(batch_size, limit - scored - skipped)
                with session_scope(db_url) as session:
                    batch = tasks_to_score(
                        session,
                        dataset_id,
                        only_unlabeled=only_unlabeled,
                        after_id=after,
                        limit=size,
                        assigned=assigned,
                    )
                    if not batch:
                        break
                    after = batch[-1][0]
                    ids, probs = source.probabilities(session, batch)
                    skipped += len(batch) - len(ids)
                    if ids:
                        unc = write_scores(session, ids, probs, strategy)
                        scored += len(ids)
                        total_unc += float(unc.sum())
                        high += int((priority(unc) >= HIGH_PRIORITY).sum())
                job.progress(f"scored {scored} tasks from {name}", scored=scored)
        if scored == 0:
            if source.head is None:
                raise SkipStep("nothing to score from: no promoted classifier and no pre-labels yet")
            raise SkipStep("no tasks to score")
        message = f"scored {scored} tasks by {strategy} from {name}: mean uncertainty {total_unc / scored:.3f}"
        if skipped:
            message += f" ({skipped} without a prediction skipped)"
        moved = 0
        if diverse_head > 1:
            with session_scope(db_url) as session:
                moved = diversify_queue_head(session, dataset_id, diverse_head)
            message += f"; the first {diverse_head} are diverse ({moved} near-duplicates moved behind them)"
        job.done(message, scored=scored, skipped=skipped, high_priority=high, moved_back=moved)
        job.result = {"scored": scored, "skipped": skipped, "source": name, "strategy": strategy, "moved_back": moved}
    return job.result
