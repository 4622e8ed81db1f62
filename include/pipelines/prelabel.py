"""prelabel: suggest labels for unlabeled tasks and write them to the shadow index and to Label
Studio as predictions (bulk; ``score = confidence``; ``model_version`` on predictions and project).

Backends: ``classifier`` (the dataset's promoted head, the default once one exists),
``similarity`` (cold start by embedding similarity to label descriptions), ``ollama`` and
``openai`` (LLMs asked for JSON). Each batch is committed with its predictions, so a failure
keeps finished batches and the next run redoes only the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from include.config import Settings
from include.db.models import Dataset, Item, ModelVersion, Task, TaskStatus
from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient
from include.ml.embeddings.backends import DEFAULT_MODEL, EmbeddingBackend, backend_for
from include.ml.embeddings.store import get_model, load_vectors
from include.ml.prelabel.backends import (
    ClassifierPrelabeler,
    PrelabelStats,
    SimilarityPrelabeler,
    ollama_prelabeler,
    openai_prelabeler,
)
from include.ml.registry import promoted_model
from include.ml.training.model import TrainedHead
from include.pipelines.embed_items import embed_dataset
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services.datasets import get_dataset
from include.services.predictions import Prediction, push_predictions

log = logging.getLogger(__name__)

BACKENDS = ("auto", "classifier", "similarity", "ollama", "openai")
UNLABELED = (TaskStatus.IMPORTED, TaskStatus.ASSIGNED)


def unlabeled_tasks(
    session: Session, dataset_id: int, *, after_id: int, limit: int, skip_version: str | None = None
) -> list[tuple[int, int, str, str]]:
    """(task id, Label Studio task id, text hash, text) of unlabeled tasks, by id (keyset);
    tasks already pre-labeled by ``skip_version`` are left out."""
    stmt = (
        select(Task.id, Task.ls_task_id, Item.text_hash, Item.text)
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset_id, Task.status.in_(UNLABELED), Task.id > after_id)
    )
    if skip_version is not None:
        stmt = stmt.where(or_(Task.model_version.is_(None), Task.model_version != skip_version))
    rows = session.execute(stmt.order_by(Task.id).limit(limit)).tuples()
    return [(int(a), int(b), str(c), str(d)) for a, b, c, d in rows]


def _choose_backend(
    db_url: str, dataset: Dataset, name: str, settings: Settings, embedder: EmbeddingBackend, descriptions: dict | None
) -> Any:
    labels = list(dataset.labels)
    if name in ("auto", "classifier"):
        with session_scope(db_url) as session:
            promoted: ModelVersion | None = promoted_model(session, dataset.id)
            path = promoted.artifact_path if promoted else None
            version = promoted.version if promoted else None
        if path and Path(path).exists():
            head = TrainedHead.load(Path(path))
            return ClassifierPrelabeler(head, model_version=str(version))
        if name == "classifier":
            raise SkipStep("no promoted classifier for this dataset yet: train one, or pre-label by similarity")
        name = "similarity"
    if name == "similarity":
        return SimilarityPrelabeler.build(labels, embedder.embed, embedder.name, descriptions)
    if name == "ollama":
        return ollama_prelabeler(
            settings.require("ollama_base_url"),
            settings.ollama_model,
            labels,
            timeout=settings.ollama_timeout,
            descriptions=descriptions,
        )
    if name == "openai":
        return openai_prelabeler(
            settings.require("openai_base_url"),
            settings.openai_model,
            labels,
            api_key=settings.openai_api_key,
            timeout=settings.openai_timeout,
            descriptions=descriptions,
        )
    raise ValueError(f"backend must be one of {BACKENDS}")


def run_prelabel(
    db_url: str,
    client: LabelStudioClient,
    run: RunRef,
    settings: Settings,
    *,
    dataset_id: int,
    backend: str = "auto",
    limit: int | None = None,
    batch_size: int = 500,
    only_new: bool = True,
    embedder: EmbeddingBackend | None = None,
    descriptions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``prelabel`` job for one dataset."""
    params = {"dataset_id": dataset_id, "backend": backend, "limit": limit, "only_new": only_new}
    with tracked_job(db_url, "prelabel", run, dataset_id=dataset_id, params=params) as job:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            session.expunge(dataset)
        if dataset.ls_project_id is None:
            raise SkipStep("the dataset is not in Label Studio yet: run ls_import first")
        embedder = embedder or backend_for(DEFAULT_MODEL)
        model = _choose_backend(db_url, dataset, backend, settings, embedder, descriptions)
        stats = PrelabelStats()
        if model.needs_vectors:
            embed_dataset(db_url, embedder, dataset_id)
        with session_scope(db_url) as session:
            emb = get_model(session, embedder.name) if model.needs_vectors else None
            emb_id = emb.id if emb else None
        done = written = 0
        after = 0
        total = limit
        while total is None or done < total:
            size = batch_size if total is None else min(batch_size, total - done)
            with session_scope(db_url) as session:
                batch = unlabeled_tasks(
                    session,
                    dataset_id,
                    after_id=after,
                    limit=size,
                    skip_version=model.model_version if only_new else None,
                )
                vectors = None
                if model.needs_vectors and batch:
                    found = load_vectors(session, int(emb_id), [h for _, _, h, _ in batch])  # type: ignore[arg-type]
                    missing = [h for _, _, h, _ in batch if h not in found]
                    if missing:
                        raise RuntimeError(f"{len(missing)} texts have no {embedder.name} embedding")
                    vectors = np.stack([found[h] for _, _, h, _ in batch])
            if not batch:
                break
            suggestions = model.predict([t for _, _, _, t in batch], vectors, stats)
            rows = []
            predictions = []
            for (task_id, ls_id, _, _), s in zip(batch, suggestions, strict=True):
                if s is None:
                    continue
                rows.append(
                    {
                        "id": task_id,
                        "prelabel_label": s.label,
                        "prelabel_score": s.confidence,
                        "prelabel_json": {
                            "probs": s.probs,
                            "backend": model.model_version,
                            "raw": s.raw if isinstance(s.raw, dict | str | None) else str(s.raw),
                        },
                        "model_version": model.model_version,
                    }
                )
                predictions.append(Prediction(ls_id, s.label, s.confidence))
            # Label Studio first: if it fails, the shadow index does not claim predictions it lacks.
            written += push_predictions(client, dataset.ls_project_id, predictions, model.model_version)
            with session_scope(db_url) as session:
                if rows:
                    session.execute(update(Task), rows)
            done += len(batch)
            after = batch[-1][0]
            job.progress(
                f"pre-labeled {done} tasks with {model.model_version}",
                prelabeled=done,
                malformed=stats.malformed,
                failed=stats.failed,
            )
        if done == 0:
            raise SkipStep(f"no unlabeled tasks without a {model.model_version} pre-label")
        message = f"pre-labeled {stats.predicted} tasks with {model.model_version}"
        problems = []
        if stats.malformed:
            problems.append(f"{stats.malformed} malformed answers")
        if stats.failed:
            problems.append(f"{stats.failed} failed requests")
        if problems:
            message += " (" + ", ".join(problems) + ")"
        job.done(
            message,
            prelabeled=stats.predicted,
            malformed=stats.malformed,
            failed=stats.failed,
            ls_predictions=written,
            problem_examples=stats.examples,
        )
        job.result = {
            "prelabeled": stats.predicted,
            "malformed": stats.malformed,
            "failed": stats.failed,
            "model_version": model.model_version,
            "ls_predictions": written,
        }
    return job.result
