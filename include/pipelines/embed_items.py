"""embed_items: embed a dataset's texts that the model has not seen yet, in batches, into pgvector
(include.pipelines.training.embedding), then build the model's HNSW index after a bulk load."""

from __future__ import annotations

import logging
from typing import Any

from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.pipelines.catalog import EmbedValues, IndexValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.pipelines.training.embedding import build_index, embed_dataset
from include.services import pii
from include.services.datasets import all_dataset_ids
from include.services.embedding_models import embedder_for
from include.services.vectors import count_vectors, get_model

log = logging.getLogger(__name__)


def run_embed_items(
    db_url: str,
    run: RunRef,
    values: EmbedValues,
    *,
    embedder: Embedder | None = None,
    defer_index: bool = False,
) -> dict[str, Any]:
    """The ``embed_items`` job for one dataset (or every dataset).

    With ``defer_index`` a bulk load leaves the HNSW (re)build to :func:`run_build_index`.
    """
    dataset_id, model_name, batch_size = values.dataset_id, values.embedding_model, values.batch_size
    with tracked_job(db_url, "embed_items", run, values) as job:
        embedder = embedder or embedder_for(model_name, db_url)
        with session_scope(db_url) as session:
            ids = [dataset_id] if dataset_id is not None else all_dataset_ids(session)
        if not ids:
            raise SkipStep("no datasets")
        results, blocked = [], []
        for ds in ids:
            try:
                results.append(
                    embed_dataset(db_url, embedder, ds, batch_size=batch_size, job=job, defer_index=defer_index)
                )
            except pii.DeidentificationRequired as exc:
                if dataset_id is not None:
                    raise
                blocked.append(str(exc))  # every other dataset is still embedded
                log.warning("%s", exc)
        embedded = sum(r["embedded"] for r in results)
        job.result = {"embedded": embedded, "datasets": results, "blocked": blocked}
        suffix = f"; {len(blocked)} blocked: " + "; ".join(blocked) if blocked else ""
        if embedded == 0:
            raise SkipStep(f"nothing new to embed with {embedder.name}{suffix}")
        job.done(f"embedded {embedded} new texts with {embedder.name}{suffix}", embedded=embedded)
    return job.result


def run_build_index(db_url: str, run: RunRef, values: IndexValues) -> dict[str, Any]:
    """The ``build_index`` job: build a model's HNSW index if a bulk load left it to be built."""
    model_name = values.embedding_model
    with tracked_job(db_url, "build_index", run, values) as job:
        with session_scope(db_url) as session:
            model = get_model(session, model_name)
            if model is None:
                raise SkipStep(f"no embeddings for {model_name} yet")
            model_id = model.id
            vectors = count_vectors(session, model_id)
        seconds = build_index(db_url, model_id)
        if seconds is None:
            raise SkipStep(f"the HNSW index of {model_name} is up to date")
        job.done(f"built the HNSW index of {model_name} ({vectors} vectors) in {seconds:.1f} s", vectors=vectors)
        job.result = {"model": model_name, "vectors": vectors, "seconds": seconds}
    return job.result
