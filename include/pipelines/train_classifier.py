"""train_classifier: train a head on the embeddings of labeled, non-conflict tasks (then the
``gate`` step judges it: include.pipelines.training.gate).

Records an experiment (hyperparameters, data snapshot, per-epoch metrics) and a candidate model
with its artifact. Training skips when there are too few labels or none new since the last
experiment on this data.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.ml.training.params import TrainParams
from include.ml.training.train import TrainResult, train_head
from include.pipelines.catalog import TrainValues
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.pipelines.training.adoption import adopt_earlier_try
from include.pipelines.training.data import TrainingSet, load_training_set, reserve_training, training_labels
from include.pipelines.training.embedding import embed_dataset
from include.pipelines.training.progress import ProgressRecorder, TrainingStopped, head_progress, supervised
from include.services import eval_set, training_configs
from include.services.datasets import get_dataset
from include.services.embedding_models import embedder_for
from include.services.experiments import (
    data_snapshot,
    finish_experiment,
    is_stopped,
    last_snapshot,
    record_items,
    start_experiment,
)
from include.services.registry import register_candidate

log = logging.getLogger(__name__)


def _train(
    db_url: str, data: TrainingSet, name: str, params: TrainParams, experiment_id: int, job: JobHandle
) -> TrainResult:
    """Train, marking the experiment failed if training does; a stop is a skip, not a failure."""
    with supervised(db_url, experiment_id, "epochs"):
        recorder = ProgressRecorder(db_url, experiment_id, job, head_progress)
        # Reliability weights (the dataset's label_weights) where the head takes them: the MLP
        # trains on the estimate's labels unweighted.
        weights = data.weights if params.kind == "logistic" else None
        result = train_head(data.x, data.y, data.labels, name, params, on_epoch=recorder, sample_weight=weights)
        with session_scope(db_url) as session:
            if is_stopped(session, experiment_id):  # stopped after the last epoch: still no model
                raise TrainingStopped(len(result.history))
    return result


def _register(
    db_url: str, data: TrainingSet, result: TrainResult, params: TrainParams, experiment_id: int, dataset_id: int
) -> tuple[int, str]:
    """Record what the run trained on, finish its experiment and register the candidate."""
    version = f"{params.kind}-ds{dataset_id}-e{experiment_id}"
    val_idx = result.val_idx if result.val_idx is not None else np.arange(0)
    train_idx = result.train_idx if result.train_idx is not None else np.arange(len(data.hashes))
    with session_scope(db_url) as session:
        record_items(session, experiment_id, [data.hashes[i] for i in train_idx], [data.hashes[i] for i in val_idx])
        eval_set.mark_trained(session, dataset_id, data.hashes)
        finish_experiment(
            session,
            experiment_id,
            metrics={**result.metrics, "best_epoch": result.best_epoch, "epochs": len(result.history)},
            device=result.device,
            n_train=len(train_idx),
            n_val=len(val_idx),
        )
        model = register_candidate(
            session,
            version=version,
            kind=params.kind,
            experiment_id=experiment_id,
            dataset_id=dataset_id,
            embedding_model_id=data.embedding_model_id,
            labels=data.labels,
            metrics=result.metrics,
            artifact=result.head.to_bytes(),
        )
        return model.id, version


def run_train_classifier(
    db_url: str,
    run: RunRef,
    values: TrainValues,
    *,
    embedder: Embedder | None = None,
    step: str = "train_classifier",
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one candidate; returns ``{"model_id", "version", "metrics", ...}`` or a skip.

    ``values.config_id``: a training config of the dataset whose values replace the
    hyperparameters (the job row records what ran). ``step`` and ``tags`` let a sweep record its
    trials as its own job and mark each experiment with its trial.
    """
    dataset_id, embedding_model = values.dataset_id, values.embedding_model
    with tracked_job(db_url, step, run, values, params=tags) as job:
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            if values.config_id is not None:
                row = training_configs.get(session, dataset_id, values.config_id)
                merged = training_configs.train_values(session, dataset_id, values.config_id, values.as_params())
                values = values.replace(**merged)
                tags = {**(tags or {}), "config": row.name}
                job.record_values(values, **(tags or {}))
            params = values.hyper
            labels = training_labels(session, dataset)
            snapshot = data_snapshot(labels.examples, embedding_model)
            last = last_snapshot(session, dataset_id)
            kept = adopt_earlier_try(
                session, job, run, dataset_id=dataset_id, snapshot=snapshot, params=params, extra=tags
            )
            if kept is not None:
                return kept
            skip = None
            if len(labels.examples) < values.min_labels:
                skip = (
                    f"{len(labels.examples)} labeled tasks to train on ({labels.evaluation.size} more are reserved "
                    f"for evaluation); training needs at least {values.min_labels}"
                )
            elif not values.force and last is not None and last[1] == snapshot:
                skip = f"no new labels since experiment {last[0]}"
            else:
                reserve_training(session, dataset_id, labels.examples)
        if skip is not None:
            raise SkipStep(skip)

        embedder = embedder or embedder_for(embedding_model, db_url)
        embed_dataset(db_url, embedder, dataset_id)  # only texts not embedded yet
        data = load_training_set(db_url, embedder, labels.examples, list(dataset.labels), labels.weights)
        with session_scope(db_url) as session:
            experiment_id = start_experiment(
                session,
                dataset=dataset,
                embedding_model_id=data.embedding_model_id,
                embedding_model=embedding_model,
                params=params,
                n_labeled=len(data.hashes),
                snapshot=snapshot,
                run_id=run.run_id,
                snapshot_id=labels.snapshot_id,
                extra=tags,
            )
        result = _train(db_url, data, embedder.name, params, experiment_id, job)
        model_id, version = _register(db_url, data, result, params, experiment_id, dataset_id)
        job.done(
            f"trained {version} on {len(data.hashes)} labels ({result.device}, {len(result.history)} "
            f"{'settings cross-validated' if 'cv_folds' in result.metrics else 'epochs'}): "
            f"val F1 {result.metrics['f1']:.3f}, ROC-AUC {result.metrics['roc_auc']:.3f}, "
            f"ECE {result.metrics['ece']:.3f}",
            labels=len(data.hashes),
        )
        job.result = {
            "model_id": model_id,
            "version": version,
            "metrics": result.metrics,
            "device": result.device,
            "experiment_id": experiment_id,
        }
    return job.result
