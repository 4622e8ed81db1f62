"""embed_items: embed a dataset's texts that the model has not seen yet, in batches, into pgvector.

A text is embedded once per model whatever dataset it is in (the key is its sha256). Each batch
is committed before the next is encoded, so a failure keeps the finished ones.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from include.db.models import Dataset, EmbeddingModel
from include.db.session import session_scope
from include.ml.embeddings.backends import EmbeddingBackend, backend_for
from include.ml.embeddings.store import (
    count_missing,
    count_vectors,
    drop_index,
    ensure_index,
    get_model,
    missing_texts,
    register_model,
    write_embeddings,
)
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job

log = logging.getLogger(__name__)

DEFAULT_BATCH = 512
# Loads at least this big (and at least as big as what the model already has) drop the model's
# HNSW index and rebuild it afterwards: per-row HNSW maintenance costs ~1 ms a vector, a build ~0.25 ms.
BULK_LOAD_MIN = 5000


def ensure_registered(db_url: str, backend: EmbeddingBackend) -> tuple[int, int]:
    """(model id, dimension), registering the model on first use (remote models: by probing once)."""
    with session_scope(db_url) as session:
        row = get_model(session, backend.name)
        if row is not None:
            ensure_index(session, row)  # in case a killed bulk load left it dropped
            return row.id, row.dimension
    dimension = int(getattr(backend, "dimension", 0) or backend.embed(["dimension probe"]).shape[1])
    with session_scope(db_url) as session:
        row = register_model(session, backend.name, backend.kind, backend.model, dimension)
        return row.id, row.dimension


def embed_dataset(
    db_url: str,
    backend: EmbeddingBackend,
    dataset_id: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    job: JobHandle | None = None,
) -> dict[str, Any]:
    """Embed every text of the dataset missing for this model; returns counts and timings."""
    model_id, dimension = ensure_registered(db_url, backend)
    with session_scope(db_url) as session:
        if session.get(Dataset, dataset_id) is None:
            raise LookupError(f"dataset {dataset_id} does not exist")
        total = count_missing(session, model_id, dataset_id)
        bulk = total >= BULK_LOAD_MIN and total >= count_vectors(session, model_id)
        if bulk:
            drop_index(session, model_id)
    stats: dict[str, Any] = {}
    try:
        _load(db_url, backend, model_id, dimension, dataset_id, batch_size, total, job, stats)
    finally:
        if bulk:
            started = time.perf_counter()
            with session_scope(db_url) as session:
                ensure_index(session, session.get_one(EmbeddingModel, model_id))
            log.info("rebuilt the HNSW index of %s in %.1f s", backend.name, time.perf_counter() - started)
    return {
        "dataset_id": dataset_id,
        "model": backend.name,
        "model_id": model_id,
        "embedded": stats["done"],
        "encode_seconds": round(stats["encode_s"], 3),
        "write_seconds": round(stats["write_s"], 3),
        "bulk_load": bulk,
    }


def _load(
    db_url: str,
    backend: EmbeddingBackend,
    model_id: int,
    dimension: int,
    dataset_id: int,
    batch_size: int,
    total: int,
    job: JobHandle | None,
    stats: dict[str, Any],
) -> None:
    """Encode and write batch by batch (each batch committed); fills ``stats``."""
    done = 0
    after = ""
    encode_s = write_s = 0.0
    stats.update(done=0, encode_s=0.0, write_s=0.0)
    while True:
        with session_scope(db_url) as session:
            batch = missing_texts(session, model_id, dataset_id, after_hash=after, limit=batch_size)
        if not batch:
            break
        started = time.perf_counter()
        vectors = backend.embed([t for _, t in batch])
        encode_s += time.perf_counter() - started
        if vectors.shape != (len(batch), dimension):
            raise ValueError(
                f"{backend.name} returned vectors of shape {vectors.shape}, expected ({len(batch)}, {dimension})"
            )
        started = time.perf_counter()
        with session_scope(db_url) as session:
            write_embeddings(session, model_id, [h for h, _ in batch], vectors)
        write_s += time.perf_counter() - started
        done += len(batch)
        after = batch[-1][0]
        stats.update(done=done, encode_s=encode_s, write_s=write_s)
        message = f"embedded {done} of {total} texts with {backend.name}"
        if job is not None:
            job.progress(message, embedded=done, total=total)
        else:
            log.info("%s", message)


def run_embed_items(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int | None,
    model_name: str,
    batch_size: int = DEFAULT_BATCH,
    backend: EmbeddingBackend | None = None,
) -> dict[str, Any]:
    """The ``embed_items`` job for one dataset (or every dataset)."""
    params = {"dataset_id": dataset_id, "embedding_model": model_name, "batch_size": batch_size}
    with tracked_job(db_url, "embed_items", run, dataset_id=dataset_id, params=params) as job:
        backend = backend or backend_for(model_name)
        with session_scope(db_url) as session:
            ids = (
                [dataset_id]
                if dataset_id is not None
                else list(session.scalars(select(Dataset.id).order_by(Dataset.id)))
            )
        if not ids:
            raise SkipStep("no datasets")
        results = [embed_dataset(db_url, backend, ds, batch_size=batch_size, job=job) for ds in ids]
        embedded = sum(r["embedded"] for r in results)
        job.result = {"embedded": embedded, "datasets": results}
        if embedded == 0:
            raise SkipStep(f"nothing new to embed with {backend.name}")
        job.done(f"embedded {embedded} new texts with {backend.name}", embedded=embedded)
        job.result = {"embedded": embedded, "datasets": results}
    return job.result
