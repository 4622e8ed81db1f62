"""batch_inference: run a registered model version over a dataset or an uploaded file.

Dataset items use their stored embeddings (the ones still missing are embedded first); an
uploaded file's texts are embedded batch by batch and never stored as embeddings. Each batch's
predictions are written with one COPY and committed, and the job shows progress; a retried task
resumes after the last row written. Runs on queue and pool ``gpu``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from include.db.models import EmbeddingModel, InferenceRun
from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.ml.training.model import TrainedHead
from include.pipelines.catalog import BatchInferenceValues
from include.pipelines.runner import JobHandle, RunRef, tracked_job
from include.pipelines.training.embedding import embed_dataset
from include.services import inference
from include.services.datasets import get_dataset
from include.services.embedding_models import embedder_for
from include.services.registry import ArtifactMissing, load_head

log = logging.getLogger(__name__)

BATCH = 20_000


def run_batch_inference(
    db_url: str,
    run: RunRef,
    values: BatchInferenceValues,
    *,
    embedder: Embedder | None = None,
    batch_size: int = BATCH,
) -> dict[str, Any]:
    """The ``batch_inference`` job: a run prepared by the web app (``inference_run_id``), or a new
    one over ``dataset_id`` with ``model_id`` (the dataset's promoted model when empty)."""
    dataset_id, model_id, inference_run_id = values.dataset_id, values.model_id, values.inference_run_id
    with tracked_job(db_url, "batch_inference", run, values) as job:
        with session_scope(db_url) as session:
            if inference_run_id is not None:
                target = inference.get_run(session, inference_run_id)
            elif dataset_id is not None:
                target = inference.create_for_dataset(session, get_dataset(session, dataset_id), model_id, None)
            else:
                raise inference.InferenceError("name a dataset, or a prepared run (inference_run_id)")
            target.status, target.job_id, target.message = "running", job.job_id, ""
            model = inference.resolve_model(session, None, target.model_id)
            version = model.version
            try:
                head = load_head(session, model.id)
            except ArtifactMissing as exc:
                raise inference.InferenceError(f"the weights of {version} are missing: {exc}") from None
            embedding = session.get(EmbeddingModel, model.embedding_model_id)
            run_id, source, run_dataset = target.id, target.source, target.dataset_id
            embedding_name = embedding.name if embedding else None
            embedding_id = embedding.id if embedding else None
        try:
            embedder = embedder or embedder_for(embedding_name or head.embedding_model, db_url)
            if source == "dataset":
                _over_dataset(db_url, job, run_id, run_dataset, head, embedder, embedding_id, batch_size)  # type: ignore[arg-type]
            else:
                _over_upload(db_url, job, run_id, head, embedder, batch_size)
        except Exception as exc:
            with session_scope(db_url) as session:
                inference.finish(session, inference.get_run(session, run_id), "failed", str(exc))
            raise
        with session_scope(db_url) as session:
            counts = Counter(inference.label_counts(session, run_id))  # a resumed run counts every attempt's rows
        total = sum(counts.values())
        summary = ", ".join(f"{n} {label}" for label, n in counts.most_common())
        message = f"predicted {total} texts with {version}" + (f": {summary}" if summary else "")
        with session_scope(db_url) as session:
            inference.finish(session, inference.get_run(session, run_id), "done", message)
        job.done(message, predicted=total)
        job.result = {"inference_run_id": run_id, "predicted": total, "labels": dict(counts)}
    return job.result


def _over_dataset(
    db_url: str,
    job: JobHandle,
    run_id: int,
    dataset_id: int,
    head: TrainedHead,
    embedder: Embedder,
    embedding_id: int | None,
    batch_size: int,
) -> None:
    embed_dataset(db_url, embedder, dataset_id)  # texts added since the last embedding run
    with session_scope(db_url) as session:
        done, after = inference.done_rows(session, run_id)
        total = inference.count_items(session, dataset_id)
        if embedding_id is None:
            from include.services.vectors import get_model

            found = get_model(session, embedder.name)
            embedding_id = found.id if found else None
    if embedding_id is None:
        raise inference.InferenceError(f"no embeddings of {embedder.name} for this dataset")
    with session_scope(db_url) as session:
        dimension = session.get_one(EmbeddingModel, embedding_id).dimension
    while True:
        with session_scope(db_url) as session:
            ids, hashes, vectors = inference.dataset_batch(
                session, dataset_id, embedding_id, after=after, limit=batch_size, dimension=dimension
            )
            if not ids:
                return
            probs = head.predict_proba(vectors)
            inference.write_results(session, run_id, ids, hashes, probs, head.labels)
        done += len(ids)
        after = ids[-1]
        job.progress(f"predicted {done} of {total} items", predicted=done, total=total)


def _over_upload(
    db_url: str, job: JobHandle, run_id: int, head: TrainedHead, embedder: Embedder, batch_size: int
) -> None:
    with session_scope(db_url) as session:
        done, after = inference.done_rows(session, run_id)
        total = session.get(InferenceRun, run_id).rows  # type: ignore[union-attr]
    size = min(batch_size, 2048)  # texts are embedded here: keep a batch the encoder's size
    while True:
        with session_scope(db_url) as session:
            batch = inference.upload_batch(session, run_id, after=after, limit=size)
            if not batch:
                return
            probs = head.predict_proba(embedder.embed([t for _, _, t in batch]))
            inference.write_results(
                session, run_id, [r for r, _, _ in batch], [h for _, h, _ in batch], probs, head.labels
            )
        done += len(batch)
        after = batch[-1][0]
        job.progress(f"predicted {done} of {total} rows", predicted=done, total=total)
