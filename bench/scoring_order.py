"""Scoring 100,000 tasks after a new model: how soon the tasks in annotators' lists carry the new
priorities, against the whole pool (the live loop's slowest step at 100k, bench/live_loop.py).

Real PostgreSQL + pgvector (pgserver); random unit vectors stand in for the texts' embeddings
(scoring reads vectors, never texts) and a head trained on them is promoted. 50 tasks are
assigned to an annotator, spread over the id range as auto-assign leaves them. The clock runs
from the start of ``run_score_uncertainty`` to the commit of the batch that holds the last of
those 50 tasks, and to the end of the run, in the same process.

Environment: BENCH_ORDER_N (default 100000), BENCH_ORDER_ROUNDS (default 3).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np

from bench._env import postgres, save
from include.pipelines.catalog import ScoreValues
from include.services.privacy import SYNTHETIC

N = int(os.environ.get("BENCH_ORDER_N", "100000"))
ROUNDS = int(os.environ.get("BENCH_ORDER_ROUNDS", "3"))
ASSIGNED = 50
DIM = 384


class _Stored:
    """An embedder whose vectors are all stored already: scoring must never ask it to embed."""

    name = "bench-random-384"
    backend = "sentence_transformers"
    model = "bench-random-384"
    dimension = DIM

    def embed(self, texts: list[str]) -> np.ndarray:
        raise AssertionError(f"asked to embed {len(texts)} texts: the bench stored them all")


def setup(db: str) -> tuple[int, list[int]]:
    from sqlalchemy import select

    from include.db.models import Item, ModelStatus, Role, Task, TaskStatus
    from include.db.session import session_scope
    from include.ml.training.train import TrainParams, train_head
    from include.services.datasets import add_items, create_dataset
    from include.services.registry import register_candidate
    from include.services.users import create_user
    from include.services.vectors import register_model, write_embeddings

    rng = np.random.default_rng(7)
    with session_scope(db) as s:
        dataset = create_dataset(s, "scoring-order", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, ((f"bench scoring order text {i}", {}) for i in range(N)))
        dataset_id = dataset.id
        items = s.execute(select(Item.id, Item.text_hash).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        s.add_all(
            Task(
                dataset_id=dataset_id, item_id=i, ls_project_id=1, ls_task_id=10_000_000 + k, status=TaskStatus.IMPORTED
            )
            for k, (i, _) in enumerate(items)
        )
        model = register_model(s, _Stored.name, _Stored.backend, _Stored.model, DIM)
        x = rng.normal(size=(N, DIM)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        write_embeddings(s, model.id, [h for _, h in items], x)
        y = (x[:, 0] > 0).astype(np.int64)
        head = train_head(x[:2000], y[:2000], ["OK", "NG"], _Stored.name, TrainParams()).head
        row = register_candidate(
            s, version="bench-order-1", kind="logistic", experiment_id=None, dataset_id=dataset_id,  # type: ignore[arg-type]
            embedding_model_id=model.id, labels=["OK", "NG"], metrics={}, artifact=head.to_bytes(),
        )  # fmt: skip
        row.status = ModelStatus.PROMOTED
        s.flush()
        annotator = create_user(s, "bench-annotator", "bench@x.io", "password-123", Role.ANNOTATOR)
        ids = s.scalars(select(Task.id).where(Task.dataset_id == dataset_id).order_by(Task.id)).all()
        assigned = [int(ids[k]) for k in rng.choice(len(ids), ASSIGNED, replace=False)]
        for task in s.scalars(select(Task).where(Task.id.in_(assigned))):
            task.assigned_to = annotator.id
    return dataset_id, assigned


def one_round(db: str, dataset_id: int, assigned: list[int]) -> dict[str, float]:
    from include.pipelines import score_uncertainty as pipeline
    from include.pipelines.runner import RunRef

    waiting = set(assigned)
    marks: dict[str, float] = {}
    real_write = pipeline.write_scores

    def spy(session: Any, ids: list[int], probs: np.ndarray, strategy: str) -> np.ndarray:
        out = real_write(session, ids, probs, strategy)
        waiting.difference_update(ids)
        if not waiting and "assigned" not in marks:
            marks["pending_commit"] = time.perf_counter()
        return out

    pipeline.write_scores = spy  # type: ignore[assignment]
    real_progress = None
    try:
        started = time.perf_counter()
        from include.pipelines.runner import JobHandle

        real_progress = JobHandle.progress

        def progress(self: Any, message: str, **counts: Any) -> None:  # runs right after each batch commits
            if "pending_commit" in marks and "assigned" not in marks:
                marks["assigned"] = time.perf_counter()
            real_progress(self, message, **counts)

        JobHandle.progress = progress  # type: ignore[method-assign]
        result = pipeline.run_score_uncertainty(db, RunRef(), ScoreValues(dataset_id=dataset_id), embedder=_Stored())  # type: ignore[arg-type]
        total = time.perf_counter() - started
    finally:
        pipeline.write_scores = real_write  # type: ignore[assignment]
        if real_progress is not None:
            JobHandle.progress = real_progress  # type: ignore[method-assign]
    assert result["scored"] == N, result
    return {"assigned_visible_s": marks["assigned"] - started, "all_scored_s": total}


def main() -> None:
    with postgres("bench_scoring_order") as db:
        dataset_id, assigned = setup(db)
        rounds = [one_round(db, dataset_id, assigned) for _ in range(ROUNDS)]
    assigned_s = statistics.median(r["assigned_visible_s"] for r in rounds)
    total_s = statistics.median(r["all_scored_s"] for r in rounds)
    save(
        "scoring_order",
        {
            "tasks": N,
            "assigned": ASSIGNED,
            "rounds": rounds,
            "median_assigned_visible_s": assigned_s,
            "median_all_scored_s": total_s,
            "assigned_over_all": assigned_s / total_s,
        },
    )


if __name__ == "__main__":
    main()
