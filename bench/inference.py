"""Batch inference over 1,000,000 items with stored 384-d embeddings.

The ``batch_inference`` pipeline (run record, job progress per batch, keyset reads of the stored
vectors, one COPY of the results per batch, resumable) against, in the same process:

* the bare forward pass of the same head over the same vectors already in memory (what the
  hardware does, with no database at all), and
* a bare loop doing the same database work by hand: the same binary keyset reads, the same
  forward pass, the same binary COPY of the results per batch, and nothing else (no run
  record, no job, no progress, no resume bookkeeping).

Goal: >= 0.8x. Against the in-memory forward pass the ratio is bounded by reading 1.5 GB of
vectors out of PostgreSQL; against the hand-written loop it measures the platform's own cost.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from bench._env import postgres, save, scratch
from include.pipelines.catalog import BatchInferenceValues

N = int(os.environ.get("BENCH_INFERENCE_N", "1000000"))
DIM = 384
BATCH = 20_000


class StoredOnly:
    """An embedder whose vectors are all stored already: the pipeline must never call it."""

    name = "bench-stored-384"
    backend = "sentence_transformers"
    model = "bench-stored-384"
    dimension = DIM

    def embed(self, texts: list[str]) -> np.ndarray:
        raise AssertionError(f"asked to embed {len(texts)} texts: every vector should be stored")


def populate(db: str) -> tuple[int, int, np.ndarray]:
    """1M items with stored vectors; returns (dataset id, embedding model id, the vectors)."""
    from sqlalchemy import text

    from include.db.session import get_engine, session_scope
    from include.services.vectors import drop_index, register_model, write_embeddings

    rng = np.random.default_rng(0)
    with get_engine(db).begin() as conn:
        dataset_id = conn.execute(
            text("INSERT INTO datasets (name, labels) VALUES ('big', :labels) RETURNING id"),
            {"labels": '["OK", "NG"]'},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO items (dataset_id, text, text_hash, source) "
                "SELECT :d, 'note ' || g, encode(sha256(('note ' || g)::bytea), 'hex'), '{}' "
                "FROM generate_series(1, :n) g"
            ),
            {"d": dataset_id, "n": N},
        )
        hashes = [str(h) for h in conn.execute(text("SELECT text_hash FROM items ORDER BY id")).scalars()]
    centers = rng.normal(size=(2, DIM)).astype(np.float32)
    y = rng.integers(0, 2, N)
    x = (centers[y] * 0.3 + rng.normal(size=(N, DIM)).astype(np.float32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with session_scope(db) as session:
        model = register_model(session, StoredOnly.name, StoredOnly.backend, StoredOnly.model, DIM)
        model_id = model.id
        drop_index(session, model_id)  # a bulk load, as the embed pipeline does it (inference needs no index)
    for start in range(0, N, 100_000):
        with session_scope(db) as session:
            write_embeddings(session, model_id, hashes[start : start + 100_000], x[start : start + 100_000])
    with get_engine(db).begin() as conn:
        conn.execute(text("ANALYZE"))
    return int(dataset_id), int(model_id), x


def register_head(db: str, dataset_id: int, embedding_model_id: int, x: np.ndarray) -> tuple[int, Any]:
    from include.db.models import ModelStatus, ModelVersion
    from include.db.session import session_scope
    from include.ml.training.params import TrainParams
    from include.ml.training.train import train_head

    rng = np.random.default_rng(1)
    sample = rng.choice(len(x), 4000, replace=False)
    y = (x[sample] @ np.ones(DIM, dtype=np.float32) > 0).astype(np.int64)
    head = train_head(x[sample], y, ["OK", "NG"], StoredOnly.name, TrainParams(kind="mlp", epochs=5)).head
    path = head.save(scratch() / "models" / "bench-head")
    with session_scope(db) as session:
        row = ModelVersion(
            version="bench-mlp",
            kind="mlp",
            status=ModelStatus.PROMOTED,
            dataset_id=dataset_id,
            embedding_model_id=embedding_model_id,
            labels=["OK", "NG"],
            metrics={},
            artifact_path=str(path),
        )
        session.add(row)
        session.flush()
        return row.id, head


def by_hand(db: str, dataset_id: int, embedding_model_id: int, head: Any) -> int:
    """The same reads, forward pass and COPY, with nothing around them."""
    from sqlalchemy import text

    from include.db.session import session_scope
    from include.services.inference import dataset_batch, results_payload

    with session_scope(db) as session:
        run_id = session.execute(
            text("INSERT INTO inference_runs (model_id, source) SELECT id, 'dataset' FROM models LIMIT 1 RETURNING id")
        ).scalar_one()
    after, done = 0, 0
    while True:
        with session_scope(db) as session:
            ids, hashes, vectors = dataset_batch(
                session, dataset_id, embedding_model_id, after=after, limit=BATCH, dimension=DIM
            )
            if not ids:
                return done
            probs = head.predict_proba(vectors)
            raw = session.connection().connection.driver_connection
            columns = "run_id, row, text_hash, label, confidence, uncertainty, probs"
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY inference_results ({columns}) FROM STDIN (FORMAT binary)") as copy,
            ):
                copy.write(results_payload(run_id, ids, hashes, probs.astype(np.float64), head.labels))
        done += len(ids)
        after = ids[-1]


def main() -> None:
    from include.pipelines.batch_inference import run_batch_inference
    from include.pipelines.runner import RunRef

    with postgres("inference") as db:
        started = time.perf_counter()
        dataset_id, embedding_model_id, x = populate(db)
        filled = time.perf_counter() - started
        model_id, head = register_head(db, dataset_id, embedding_model_id, x)
        head.predict_proba(x[:10_000])  # warm-up
        started = time.perf_counter()
        head.predict_proba(x)
        forward = time.perf_counter() - started
        rounds: dict[str, list[float]] = {"pipeline": [], "by_hand": []}
        for _ in range(2):
            started = time.perf_counter()
            assert by_hand(db, dataset_id, embedding_model_id, head) == N
            rounds["by_hand"].append(time.perf_counter() - started)
            started = time.perf_counter()
            result = run_batch_inference(
                db, RunRef(), BatchInferenceValues(dataset_id=dataset_id, model_id=model_id), embedder=StoredOnly()
            )
            rounds["pipeline"].append(time.perf_counter() - started)
            assert result["predicted"] == N, result
        best = {name: min(values) for name, values in rounds.items()}
        save(
            "inference",
            {
                "items": N,
                "dimension": DIM,
                "populate_seconds": round(filled, 1),
                "seconds": {**{k: round(v, 2) for k, v in best.items()}, "bare_forward_in_memory": round(forward, 3)},
                "items_per_s": {
                    "pipeline": round(N / best["pipeline"]),
                    "by_hand": round(N / best["by_hand"]),
                    "bare_forward_in_memory": round(N / forward),
                },
                "ratio_vs_by_hand": round(best["by_hand"] / best["pipeline"], 3),
                "ratio_vs_bare_forward_in_memory": round(forward / best["pipeline"], 4),
                "goal": ">= 0.8x",
            },
        )


if __name__ == "__main__":
    main()
