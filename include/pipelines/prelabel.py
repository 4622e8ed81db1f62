"""prelabel: suggest labels for unlabeled tasks and write them to the shadow index and to Label
Studio as predictions (bulk; ``score = confidence``; ``model_version`` on predictions and project).

Backends: ``classifier`` (the dataset's promoted head, the default once one exists),
``similarity`` (cold start by embedding similarity to label descriptions), ``ollama`` and
``openai`` (LLMs asked for JSON). Each batch is committed with its predictions, so a failure
keeps finished batches and the next run redoes only the rest.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from include.config import Settings
from include.db.locks import advisory_lock
from include.db.models import Dataset
from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient
from include.ml.embeddings.backends import Embedder
from include.ml.embeddings.names import DEFAULT_MODEL
from include.ml.prelabel.backends import (
    BACKEND,
    LLM_BACKENDS,
    ClassifierPrelabeler,
    PrelabelStats,
    SimilarityPrelabeler,
    llm_prelabeler,
)
from include.pipelines.catalog import PrelabelValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.pipelines.training.embedding import embed_dataset
from include.services import pii
from include.services.datasets import get_dataset
from include.services.embedding_models import embedder_for
from include.services.guidelines import prompt_text
from include.services.ls_projects import record_model_version
from include.services.predictions import Prediction, prune_superseded, push_predictions
from include.services.prelabels import (
    current_predictions,
    previous_run_unfinished,
    record_prelabels,
    unlabeled_tasks,
)
from include.services.registry import promoted_head
from include.services.vectors import get_model, load_vectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Batch:
    """One batch of tasks with their suggestions: shadow-index rows and Label Studio predictions."""

    rows_read: list[tuple[int, int, str, str, str | None]]
    rows: list[dict[str, Any]]
    predictions: list[Prediction]
    replace: frozenset[int]  # Label Studio tasks already holding a prediction of this version

    @property
    def last_id(self) -> int:
        return self.rows_read[-1][0]

    @classmethod
    def of(cls, tasks: list[tuple[int, int, str, str, str | None]], suggestions: list[Any], version: str) -> _Batch:
        rows: list[dict[str, Any]] = []
        predictions: list[Prediction] = []
        replace: set[int] = set()
        for (task_id, ls_id, _, _, previous), s in zip(tasks, suggestions, strict=True):
            if s is None:
                continue
            rows.append(
                {
                    "id": task_id,
                    "prelabel_label": s.label,
                    "prelabel_score": s.confidence,
                    "prelabel_json": {
                        "probs": s.probs,
                        "backend": version,
                        "raw": s.raw if isinstance(s.raw, dict | str | None) else str(s.raw),
                        "self_reported": s.self_reported,
                    },
                    "model_version": version,
                }
            )
            predictions.append(Prediction(ls_id, s.label, s.confidence))
            if previous == version:
                replace.add(ls_id)
        return cls(tasks, rows, predictions, frozenset(replace))


def _current(db_url: str, dataset_id: int, ls_ids: list[int], version: str) -> list[Prediction]:
    with session_scope(db_url) as session:
        return [Prediction(*row) for row in current_predictions(session, dataset_id, ls_ids, version)]


def _choose_backend(db_url: str, dataset: Dataset, name: str, settings: Settings, embedder: Embedder) -> Any:
    labels = list(dataset.labels)
    descriptions = dataset.label_descriptions or None
    if name in ("auto", "classifier"):
        with session_scope(db_url) as session:
            found = promoted_head(session, dataset.id)
        if found is not None:
            return ClassifierPrelabeler(found[1], model_version=found[0])
        if name == "classifier":
            raise SkipStep("no promoted classifier for this dataset yet: train one, or pre-label by similarity")
        name = "similarity"
    if name == "similarity":
        return SimilarityPrelabeler.build(labels, embedder.embed, embedder.name, descriptions)
    if name in LLM_BACKENDS:
        return llm_prelabeler(settings, name, labels, descriptions, prompt_text(dataset))
    raise ValueError(f"backend {name!r} is declared but not implemented")


def run_prelabel(
    db_url: str,
    client: LabelStudioClient,
    run: RunRef,
    settings: Settings,
    values: PrelabelValues,
    *,
    batch_size: int = 500,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """The ``prelabel`` job for one dataset."""
    dataset_id, backend, limit, only_new = values.dataset_id, values.backend, values.limit, values.only_new
    if limit is not None and limit <= 0:
        raise SkipStep("limit is 0: nothing to pre-label")
    with tracked_job(db_url, "prelabel", run, values) as job:
        BACKEND.parse(backend)
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            if backend in LLM_BACKENDS:
                pii.require_deidentified(session, dataset, "sending its texts to an LLM")
            session.expunge(dataset)
        if dataset.ls_project_id is None:
            raise SkipStep("the dataset is not in Label Studio yet: run ls_import first")
        # one pre-labeling of a dataset at a time (the prelabel DAG and the nightly loop's step may
        # overlap): two would both write this version's predictions to every task
        with advisory_lock(db_url, "prelabel", dataset_id):
            model = _choose_backend(db_url, dataset, backend, settings, embedder or embedder_for(DEFAULT_MODEL, db_url))
            if embedder is None:  # a classifier reads the vectors of the model it was trained on
                head = getattr(model, "head", None)
                embedder = embedder_for(head.embedding_model if head is not None else DEFAULT_MODEL, db_url)
            stats = PrelabelStats()
            if model.needs_vectors:
                embed_dataset(db_url, embedder, dataset_id)
            with session_scope(db_url) as session:
                emb = get_model(session, embedder.name) if model.needs_vectors else None
                emb_id = emb.id if emb else None
            project_id = int(dataset.ls_project_id)
            version = model.model_version

            def prepare(after: int, size: int) -> _Batch | None:
                """Read, embed-look-up and predict the next batch (overlaps Label Studio's writes)."""
                with session_scope(db_url) as session:
                    tasks = unlabeled_tasks(
                        session, dataset_id, after_id=after, limit=size, skip_version=version if only_new else None
                    )
                    vectors = None
                    if model.needs_vectors and tasks:
                        found = load_vectors(session, int(emb_id), [t[2] for t in tasks])  # type: ignore[arg-type]
                        missing = [t[2] for t in tasks if t[2] not in found]
                        if missing:
                            raise RuntimeError(f"{len(missing)} texts have no {embedder.name} embedding")
                        vectors = np.stack([found[t[2]] for t in tasks])
                if not tasks:
                    return None
                return _Batch.of(tasks, model.predict([t[3] for t in tasks], vectors, stats), version)

            def record(batch: _Batch, first: bool) -> None:
                with session_scope(db_url) as session:
                    record_prelabels(session, batch.rows)
                    if first and batch.predictions:
                        record_model_version(session, project_id, version)

            done = written = 0
            versioned = False
            with session_scope(db_url) as session:
                # a killed run's last batches (at most two: one written, one being recorded) may be in
                # Label Studio unrecorded: this run's first two replace whatever their tasks hold
                cautious = 2 if previous_run_unfinished(session, dataset_id, job.job_id) else 0
            # One helper thread reads and predicts batch k+1, then records batch k in the shadow
            # index, while this thread writes batch k to Label Studio (which is first: if it fails,
            # the shadow index does not claim predictions it lacks).
            with ThreadPoolExecutor(1, thread_name_prefix="prelabel") as helper:
                batch = prepare(0, batch_size if limit is None else min(batch_size, limit))
                recorded: Future[None] | None = None
                while batch is not None:
                    done += len(batch.rows_read)
                    room = None if limit is None else limit - done
                    upcoming = (
                        helper.submit(prepare, batch.last_id, batch_size if room is None else min(batch_size, room))
                        if room is None or room > 0
                        else None
                    )
                    replace: bool | frozenset[int] = True if cautious > 0 else batch.replace
                    cautious -= 1
                    written += push_predictions(
                        client, project_id, batch.predictions, version, replace=replace, set_version=not versioned
                    )
                    first = bool(batch.predictions) and not versioned
                    versioned = versioned or bool(batch.predictions)
                    if recorded is not None:
                        recorded.result()
                    recorded = helper.submit(record, batch, first)
                    batch = upcoming.result() if upcoming is not None else None
                    job.progress(
                        f"pre-labeled {done} tasks with {version}",
                        prelabeled=done,
                        malformed=stats.malformed,
                        failed=stats.failed,
                    )
                if recorded is not None:
                    recorded.result()
            pruned = 0
            if written:
                pruned = prune_superseded(
                    client,
                    project_id,
                    lambda ls_ids: _current(db_url, dataset_id, ls_ids, version),
                    version,
                    progress=lambda n: job.progress(
                        f"pre-labeled {done} tasks with {version}; removed older predictions from {n} tasks",
                        prelabeled=done,
                        pruned=n,
                    ),
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
            superseded_pruned=pruned,
            problem_examples=stats.examples,
        )
        job.result = {
            "prelabeled": stats.predicted,
            "malformed": stats.malformed,
            "failed": stats.failed,
            "model_version": model.model_version,
            "ls_predictions": written,
            "superseded_pruned": pruned,
        }
    return job.result
