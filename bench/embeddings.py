"""Embedding throughput through the pipeline vs raw ``model.encode`` on the same texts, same run.

The pipeline reads the texts a model has not embedded from PostgreSQL, encodes them in batches
and writes the vectors (binary COPY, HNSW index built after a bulk load). Goal: at least 0.9x
the raw throughput; a re-run with nothing new for 10,000 items in under 2 s.
"""

from __future__ import annotations

import os
import statistics

from bench._env import postgres, save, timed
from include.services.privacy import SYNTHETIC

N = int(os.environ.get("BENCH_EMBED_N", "10000"))


def main() -> None:
    from sqlalchemy import text

    from include.db.session import get_engine, session_scope
    from include.demo.texts import generate_demo_texts
    from include.ml.embeddings.backends import SentenceTransformerEmbedder, backend_for, torch_device
    from include.pipelines.training.embedding import build_index, embed_dataset
    from include.services.datasets import add_items, create_dataset

    # BENCH_EMBED_MODEL=st:<dir> measures another local model of the same kind (the GPU run uses
    # all-MiniLM-L6-v2's architecture with random weights: the 87 MB weights exceed what it can carry).
    name = os.environ.get("BENCH_EMBED_MODEL", "")
    backend = backend_for(name) if name else SentenceTransformerEmbedder()
    assert isinstance(backend, SentenceTransformerEmbedder)
    texts = [t.text for t in generate_demo_texts(N, seed=5, ambiguous=0.3)]
    model = backend._load()
    model.encode(texts[:256], batch_size=backend.batch_size)  # warm-up (kernels, caches)

    with postgres("bench_embed") as db:
        with session_scope(db) as s:
            ds = create_dataset(s, "embed-bench", labels=["OK", "NG"], privacy=SYNTHETIC)
            add_items(s, ds, [(t, {}) for t in texts])
            dataset_id = ds.id
        rounds = []
        for order in ("raw-first", "pipeline-first", "raw-first"):
            with get_engine(db).begin() as conn:
                conn.execute(text("TRUNCATE embeddings"))

            def raw() -> float:
                seconds, vectors = timed(
                    lambda: model.encode(
                        texts,
                        batch_size=backend.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
                assert vectors.shape[0] == N
                return seconds

            def pipeline() -> tuple[float, dict]:
                # The embed_items DAG's embed task: the HNSW rebuild after a bulk load is its next task.
                return timed(lambda: embed_dataset(db, backend, dataset_id, defer_index=True))

            if order == "raw-first":
                raw_s = raw()
                pipe_s, info = pipeline()
            else:
                pipe_s, info = pipeline()
                raw_s = raw()
            assert info["embedded"] == N
            index_s = build_index(db, info["model_id"])
            rounds.append(
                {
                    "order": order,
                    "raw_encode_s": raw_s,
                    "pipeline_s": pipe_s,
                    "index_build_s": index_s,
                    "ratio_with_index_build": raw_s / (pipe_s + (index_s or 0.0)),
                    "pipeline_encode_s": info["encode_seconds"],
                    "pipeline_write_s": info["write_seconds"],
                    "throughput_ratio": raw_s / pipe_s,
                    "texts_per_s_raw": N / raw_s,
                    "texts_per_s_pipeline": N / pipe_s,
                }
            )
        rerun_s, again = timed(lambda: embed_dataset(db, backend, dataset_id))
        assert again["embedded"] == 0
    save(
        "embeddings",
        {
            "texts": N,
            "model": backend.name,
            "device": backend.device or torch_device(),
            "rounds": rounds,
            "median_throughput_ratio": statistics.median(r["throughput_ratio"] for r in rounds),
            "rerun_nothing_new_s": rerun_s,
            "goals": {"throughput_ratio": ">= 0.9", "rerun_nothing_new_s": "< 2"},
        },
    )


if __name__ == "__main__":
    main()
