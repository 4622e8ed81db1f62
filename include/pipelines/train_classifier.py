"""train_classifier: train a head on the embeddings of labeled, non-conflict tasks, then gate it.

``run_train_classifier`` records an experiment (hyperparameters, data snapshot, per-epoch
metrics) and a candidate model with its artifact; ``run_gate`` promotes or rejects the
candidate. Training skips when there are too few labels or none new since the last experiment
on this data.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from include.db.session import session_scope
from include.ml.artifacts import load_holdout, save_holdout
from include.ml.embeddings.backends import Embedder, backend_for
from include.ml.embeddings.names import EMBEDDING_MODEL
from include.ml.embeddings.store import get_model, load_vectors
from include.ml.gate import MIN_F1, decide
from include.ml.training.model import TrainedHead
from include.ml.training.params import TrainParams
from include.ml.training.train import EpochRecord, TrainResult, train_head
from include.pipelines.catalog import FORCE_TRAIN, MIN_LABELS
from include.pipelines.embed_items import embed_dataset
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.services.datasets import get_dataset
from include.services.experiments import (
    data_snapshot,
    fail_experiment,
    finish_experiment,
    labeled_examples,
    last_snapshot,
    record_epoch,
    start_experiment,
)
from include.services.registry import apply_decision, candidate, promoted_model, register_candidate

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """What a head is trained on: vectors, label indices, and the text hashes they came from."""

    labels: list[str]
    hashes: list[str]
    x: np.ndarray
    y: np.ndarray
    embedding_model_id: int


def _training_set(db_url: str, embedder: Embedder, examples: list[tuple[str, str]], labels: list[str]) -> TrainingSet:
    with session_scope(db_url) as session:
        model = get_model(session, embedder.name)
        if model is None:
            raise RuntimeError(f"{embedder.name} is not registered although the dataset was just embedded")
        vectors = load_vectors(session, model.id, [h for h, _ in examples])
        model_id = model.id
    kept = [(h, label) for h, label in examples if h in vectors]
    return TrainingSet(
        labels=labels,
        hashes=[h for h, _ in kept],
        x=np.stack([vectors[h] for h, _ in kept]),
        y=np.asarray([labels.index(label) for _, label in kept], dtype=np.int64),
        embedding_model_id=model_id,
    )


class _EpochRecorder:
    """Commits each epoch's metrics (so the experiment page shows them live) and reports progress."""

    def __init__(self, db_url: str, experiment_id: int, job: JobHandle) -> None:
        self.db_url, self.experiment_id, self.job = db_url, experiment_id, job

    def __call__(self, record: EpochRecord) -> None:
        with session_scope(self.db_url) as session:
            metrics = {**record.metrics, "seconds": record.seconds}
            record_epoch(session, self.experiment_id, record.epoch, record.train_loss, record.val_loss, metrics)
        if record.epoch % 10 == 0 or record.epoch == 1:
            self.job.progress(
                f"epoch {record.epoch}: train loss {record.train_loss:.4f}, val loss {record.val_loss:.4f}, "
                f"val F1 {record.metrics['f1']:.3f}",
                epoch=record.epoch,
            )


def _train(
    db_url: str, data: TrainingSet, embedder: Embedder, params: TrainParams, experiment_id: int, job: JobHandle
) -> TrainResult:
    """Train, marking the experiment failed if training does."""
    try:
        return train_head(
            data.x, data.y, data.labels, embedder.name, params, on_epoch=_EpochRecorder(db_url, experiment_id, job)
        )
    except Exception:
        with session_scope(db_url) as session:
            fail_experiment(session, experiment_id)
        raise


def run_train_classifier(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int,
    params: TrainParams,
    model_dir: Path,
    embedding_model: str = EMBEDDING_MODEL.default,
    min_labels: int = MIN_LABELS.default,
    embedder: Embedder | None = None,
    force: bool = FORCE_TRAIN.default,
) -> dict[str, Any]:
    """Train one candidate; returns ``{"model_id", "version", "metrics", ...}`` or a skip."""
    job_params = {
        "dataset_id": dataset_id,
        **asdict(params),
        "embedding_model": embedding_model,
        "min_labels": min_labels,
    }
    with tracked_job(db_url, "train_classifier", run, dataset_id=dataset_id, params=job_params) as job:
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            examples = labeled_examples(session, dataset)
            snapshot = data_snapshot(examples, embedding_model)
            last = last_snapshot(session, dataset_id)
        if len(examples) < min_labels:
            raise SkipStep(f"{len(examples)} labeled tasks; training needs at least {min_labels}")
        if not force and last is not None and last[1] == snapshot:
            raise SkipStep(f"no new labels since experiment {last[0]}")

        embedder = embedder or backend_for(embedding_model)
        embed_dataset(db_url, embedder, dataset_id)  # only texts not embedded yet
        data = _training_set(db_url, embedder, examples, list(dataset.labels))
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
            )

        result = _train(db_url, data, embedder, params, experiment_id, job)
        version = f"{params.kind}-ds{dataset_id}-e{experiment_id}"
        artifact = result.head.save(model_dir / version)
        val_idx = result.val_idx if result.val_idx is not None else np.arange(0)
        save_holdout(artifact, [data.hashes[i] for i in val_idx], [int(data.y[i]) for i in val_idx])
        with session_scope(db_url) as session:
            finish_experiment(
                session,
                experiment_id,
                metrics={**result.metrics, "best_epoch": result.best_epoch, "epochs": len(result.history)},
                device=result.device,
                n_train=len(result.train_idx) if result.train_idx is not None else len(data.hashes),
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
                artifact_path=str(artifact),
            )
            model_id = model.id
        job.done(
            f"trained {version} on {len(data.hashes)} labels ({result.device}, {len(result.history)} epochs): "
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


def run_gate(
    db_url: str, run: RunRef, *, dataset_id: int, model_id: int | None, min_f1: float = MIN_F1.default
) -> dict[str, Any]:
    """Promote the candidate if it beats the promoted model on its held-out set, else reject it."""
    with tracked_job(
        db_url, "gate", run, dataset_id=dataset_id, params={"model_id": model_id, "min_f1": min_f1}
    ) as job:
        if model_id is None:
            raise SkipStep("no new candidate model to evaluate")
        with session_scope(db_url) as session:
            row = candidate(session, model_id)
            if row is None:
                raise SkipStep(f"model {model_id} is not a candidate")
            incumbent_row = promoted_model(session, row.dataset_id, row.embedding_model_id)
            incumbent_path = Path(incumbent_row.artifact_path) if incumbent_row else None
            candidate_path, version = Path(row.artifact_path), row.version
            hashes, y_val = load_holdout(candidate_path)
            vectors = load_vectors(session, row.embedding_model_id, hashes)
        x_val = np.stack([vectors[h] for h in hashes])
        incumbent = TrainedHead.load(incumbent_path) if incumbent_path and incumbent_path.exists() else None
        decision = decide(TrainedHead.load(candidate_path), incumbent, x_val, y_val, min_f1=min_f1)
        with session_scope(db_url) as session:
            row = candidate(session, model_id)
            if row is None:
                raise SkipStep(f"model {model_id} was decided by another run meanwhile")
            apply_decision(session, row, decision)
        verb = "promoted" if decision.promoted else "rejected"
        job.done(f"{verb} {version}: {decision.reason}", promoted=decision.promoted)
        job.result = {
            "model_id": model_id,
            "version": version,
            "promoted": decision.promoted,
            "reason": decision.reason,
        }
    return job.result
