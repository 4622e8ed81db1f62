"""Embedding a dataset's texts into pgvector, and the vector index: what every step that needs
vectors calls (embed_items, training, scoring, pre-labeling, the quality check).

A text is embedded once per model whatever dataset it is in (the key is its sha256). Each batch
is committed before the next is encoded, so a failure keeps the finished ones.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from include.db.models import EmbeddingModel
from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.pipelines.catalog import EMBED_BATCH
from include.pipelines.runner import JobHandle
from include.services import pii
from include.services.datasets import get_dataset
from include.services.vectors import (
    count_missing,
    count_vectors,
    drop_index,
    ensure_index,
    get_model,
    index_exists,
    missing_texts,
    register_model,
    write_embeddings,
)

log = logging.getLogger(__name__)

# Loads at least this big (and at least as big as what the model already has) drop the model's
# HNSW index and rebuild it afterwards: per-row HNSW maintenance costs ~1 ms a vector, a build ~0.25 ms.
BULK_LOAD_MIN = 5000


def ensure_registered(db_url: str, embedder: Embedder) -> tuple[int, int]:
    """(model id, dimension), registering the model on first use (remote models: by probing once)."""
    with session_scope(db_url) as session:
        row = get_model(session, embedder.name)
        if row is not None:
            return row.id, row.dimension
    dimension = int(getattr(embedder, "dimension", 0) or embedder.embed(["dimension probe"]).shape[1])
    with session_scope(db_url) as session:
        row = register_model(session, embedder.name, embedder.backend, embedder.model, dimension)
        return row.id, row.dimension


def embed_dataset(
    db_url: str,
    embedder: Embedder,
    dataset_id: int,
    *,
    batch_size: int = EMBED_BATCH.default,
    job: JobHandle | None = None,
    defer_index: bool = False,
) -> dict[str, Any]:
    """Embed every text of the dataset missing for this model; returns counts and timings.

    A bulk load drops the model's HNSW index and rebuilds it afterwards; with ``defer_index``
    the rebuild is left to :func:`build_index` (the DAG runs it as its own task).
    """
    with session_scope(db_url) as session:
        pii.require_deidentified(session, get_dataset(session, dataset_id), "embedding its texts")
    model_id, dimension = ensure_registered(db_url, embedder)
    with session_scope(db_url) as session:
        total = count_missing(session, model_id, dataset_id)
        bulk = total >= BULK_LOAD_MIN and total >= count_vectors(session, model_id)
        if bulk:
            drop_index(session, model_id)
    stats: dict[str, Any] = {"done": 0, "encode_s": 0.0, "write_s": 0.0}
    index_s = None
    try:
        _load(db_url, embedder, model_id, dimension, dataset_id, batch_size, total, job, stats)
    finally:
        if bulk and not defer_index:
            index_s = build_index(db_url, model_id)
    return {
        "dataset_id": dataset_id,
        "model": embedder.name,
        "model_id": model_id,
        "embedded": stats["done"],
        "encode_seconds": round(stats["encode_s"], 3),
        "write_seconds": round(stats["write_s"], 3),
        "bulk_load": bulk,
        "index_seconds": index_s,
        "index_deferred": bulk and defer_index,
    }


def build_index(db_url: str, model_id: int) -> float | None:
    """(Re)build the model's HNSW index if it is missing; returns seconds spent, None if it existed."""
    with session_scope(db_url) as session:
        model = session.get_one(EmbeddingModel, model_id)
        if index_exists(session, model_id):
            return None
        started = time.perf_counter()
        # A bigger build budget and parallel workers (pgvector >= 0.6) where the server has cores.
        session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        session.execute(text("SET LOCAL max_parallel_maintenance_workers = 7"))
        ensure_index(session, model)
    seconds = time.perf_counter() - started
    log.info("built the HNSW index of embedding model %s in %.1f s", model_id, seconds)
    return seconds


def _load(
    db_url: str,
    embedder: Embedder,
    model_id: int,
    dimension: int,
    dataset_id: int,
    batch_size: int,
    total: int,
    job: JobHandle | None,
    stats: dict[str, Any],
) -> None:
    """Encode and write batch by batch; fills ``stats``.

    Batch N+1 is read and batch N-1 written (and committed) by two helper threads while batch N
    is encoded, so the database and the model (a GPU, where there is one) work at the same time.
    """

    def write(hashes: list[str], vectors: Any) -> None:
        started = time.perf_counter()
        with session_scope(db_url) as session:
            write_embeddings(session, model_id, hashes, vectors)
        stats["write_s"] += time.perf_counter() - started
        stats["done"] += len(hashes)
        message = f"embedded {stats['done']} of {total} texts with {embedder.name}"
        if job is not None:
            job.progress(message, embedded=stats["done"], total=total)
        else:
            log.info("%s", message)

    def fetch(after_hash: str) -> list[tuple[str, str]]:
        with session_scope(db_url) as session:
            return missing_texts(session, model_id, dataset_id, after_hash=after_hash, limit=batch_size)

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-read") as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-write") as writer,
    ):
        in_flight: Future[None] | None = None
        upcoming = reader.submit(fetch, "")
        while True:
            batch = upcoming.result()
            if not batch:
                break
            upcoming = reader.submit(fetch, batch[-1][0])  # keyset: the next batch starts after this one
            started = time.perf_counter()
            vectors = embedder.embed([t for _, t in batch])
            stats["encode_s"] += time.perf_counter() - started
            if vectors.shape != (len(batch), dimension):
                raise ValueError(
                    f"{embedder.name} returned vectors of shape {vectors.shape}, expected ({len(batch)}, {dimension})"
                )
            if in_flight is not None:
                in_flight.result()  # one write in flight at a time; surfaces its error
            in_flight = writer.submit(write, [h for h, _ in batch], vectors)
        if in_flight is not None:
            in_flight.result()
