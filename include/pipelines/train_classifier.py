"""train_classifier: train a head on the embeddings of labeled, non-conflict tasks, then gate it.

``run_train_classifier`` records an experiment (hyperparameters, data snapshot, per-epoch
metrics) and a candidate model with its artifact; ``run_gate`` promotes or rejects the
candidate. Training skips when there are too few labels or none new since the last experiment
on this data.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from include.db.models import Experiment, ModelVersion
from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder, backend_for
from include.ml.embeddings.names import EMBEDDING_MODEL
from include.ml.embeddings.store import get_model, load_vectors
from include.ml.evaluation import evaluation_report
from include.ml.gate import MIN_EVAL_PER_LABEL, MIN_F1, MIN_GAIN, REQUIRE_BASELINE, decide
from include.ml.training.model import TrainedHead
from include.ml.training.params import TrainParams
from include.ml.training.train import EpochRecord, TrainResult, train_head
from include.pipelines.catalog import FORCE_TRAIN, MIN_LABELS
from include.pipelines.embed_items import embed_dataset
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.services import eval_set, quality, snapshots, training_configs
from include.services.datasets import eval_items, get_dataset
from include.services.evaluations import predictions_on
from include.services.evaluations import store as store_evaluation
from include.services.experiments import (
    data_snapshot,
    fail_experiment,
    finish_experiment,
    finished_by_earlier_try,
    is_stopped,
    last_snapshot,
    record_epoch,
    record_items,
    start_experiment,
)
from include.services.registry import (
    ArtifactMissing,
    apply_decision,
    candidate,
    latest_baseline,
    load_head,
    promoted_model,
    register_candidate,
)

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


class TrainingStopped(Exception):
    """An admin stopped the experiment; raised from the epoch callback to end training there."""


class _EpochRecorder:
    """Commits each epoch's metrics (so the experiment page shows them live), reports progress,
    and ends training when an admin has stopped the experiment."""

    def __init__(self, db_url: str, experiment_id: int, job: JobHandle) -> None:
        self.db_url, self.experiment_id, self.job = db_url, experiment_id, job

    def __call__(self, record: EpochRecord) -> None:
        with session_scope(self.db_url) as session:
            metrics = {**record.metrics, "seconds": record.seconds}
            record_epoch(session, self.experiment_id, record.epoch, record.train_loss, record.val_loss, metrics)
            stopped = is_stopped(session, self.experiment_id)
        if stopped:
            raise TrainingStopped(record.epoch)
        if record.epoch % 10 == 0 or record.epoch == 1:
            step = f"C={record.metrics['C']:.3g}" if "C" in record.metrics else f"epoch {record.epoch}"
            self.job.progress(
                f"{step}: train loss {record.train_loss:.4f}, val loss {record.val_loss:.4f}, "
                f"val F1 {record.metrics['f1']:.3f}",
                epoch=record.epoch,
            )


def _train(
    db_url: str, data: TrainingSet, embedder: Embedder, params: TrainParams, experiment_id: int, job: JobHandle
) -> TrainResult:
    """Train, marking the experiment failed if training does; a stop is a skip, not a failure."""
    try:
        result = train_head(
            data.x, data.y, data.labels, embedder.name, params, on_epoch=_EpochRecorder(db_url, experiment_id, job)
        )
        with session_scope(db_url) as session:
            if is_stopped(session, experiment_id):  # stopped after the last epoch: still no model
                raise TrainingStopped(len(result.history))
        return result
    except TrainingStopped as stop:
        raise SkipStep(
            f"stopped by an admin after {stop.args[0]} epochs; experiment {experiment_id} keeps them, no model"
        ) from None
    except Exception:
        with session_scope(db_url) as session:
            fail_experiment(session, experiment_id)
        raise


def training_labels(session: Any, dataset: Any) -> tuple[eval_set.EvalSet, int | None, list[tuple[str, str]]]:
    """What a training run learns from: the quality gate checked, new labels offered to the
    evaluation set first, then the labels frozen as a snapshot (so a model traces to exactly
    them) and its (text hash, label) rows outside the evaluation set."""
    quality.require_passed(session, dataset, "training")
    evaluation = eval_set.refresh(session, dataset)
    try:
        labels_snapshot: int | None = snapshots.take(session, dataset).snapshot.id
    except snapshots.SnapshotError:
        labels_snapshot = None
    examples = snapshots.training_examples(session, labels_snapshot) if labels_snapshot else []
    return evaluation, labels_snapshot, examples


def kept_from_earlier_try(job: JobHandle, experiment: Experiment, model: ModelVersion, **extra: Any) -> dict[str, Any]:
    """End the step with the model an earlier try of this run committed (see finished_by_earlier_try)."""
    job.done(f"{model.version} was trained by an earlier try of this run (experiment {experiment.id}): kept")
    job.result = {
        "model_id": model.id,
        "version": model.version,
        "metrics": model.metrics,
        "device": experiment.device,
        "experiment_id": experiment.id,
        **extra,
    }
    return job.result


def run_train_classifier(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int,
    params: TrainParams,
    embedding_model: str = EMBEDDING_MODEL.default,
    min_labels: int = MIN_LABELS.default,
    embedder: Embedder | None = None,
    force: bool = FORCE_TRAIN.default,
    config_id: int | None = None,
    step: str = "train_classifier",
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one candidate; returns ``{"model_id", "version", "metrics", ...}`` or a skip.

    ``config_id``: a training config of the dataset whose values replace ``params``. ``step`` and
    ``tags`` let a sweep record its trials as its own job and mark each experiment with its trial.
    """
    job_params = {
        "dataset_id": dataset_id,
        **asdict(params),
        "embedding_model": embedding_model,
        "min_labels": min_labels,
        "config_id": config_id,
        **(tags or {}),
    }
    with tracked_job(db_url, step, run, dataset_id=dataset_id, params=job_params) as job:
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            if config_id is not None:
                row = training_configs.get(session, dataset_id, config_id)
                params = TrainParams.from_values(
                    training_configs.train_values(session, dataset_id, config_id, params.values())
                )
                tags = {**(tags or {}), "config": row.name}
            evaluation, labels_snapshot, examples = training_labels(session, dataset)
            snapshot = data_snapshot(examples, embedding_model)
            last = last_snapshot(session, dataset_id)
            earlier = finished_by_earlier_try(
                session, dataset_id=dataset_id, run_id=run.run_id, snapshot=snapshot, params=params, extra=tags
            )
            if earlier is not None:
                return kept_from_earlier_try(job, *earlier)
        if len(examples) < min_labels:
            raise SkipStep(
                f"{len(examples)} labeled tasks to train on ({evaluation.size} more are reserved for evaluation); "
                f"training needs at least {min_labels}"
            )
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
                snapshot_id=labels_snapshot,
                extra=tags,
            )

        result = _train(db_url, data, embedder, params, experiment_id, job)
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
            model_id = model.id
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


def _incumbent_head(session: Any, model_id: int) -> TrainedHead | None:
    """The promoted model's head, or None (with a warning) when it cannot be read."""
    try:
        return load_head(session, model_id)
    except ArtifactMissing as exc:
        log.warning("the incumbent cannot compete: %s", exc)
        return None


def run_gate(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int,
    model_id: int | None,
    min_f1: float = MIN_F1.default,
    min_gain: float = MIN_GAIN.default,
    min_eval_per_label: int = MIN_EVAL_PER_LABEL.default,
    require_baseline: bool = REQUIRE_BASELINE.default,
) -> dict[str, Any]:
    """Score the candidate and the promoted model on the frozen eval set; promote only when the
    candidate is better beyond noise (see include.ml.gate). Both get an evaluation report."""
    params = {"model_id": model_id, "min_f1": min_f1, "min_gain": min_gain, "min_eval_per_label": min_eval_per_label}
    with tracked_job(db_url, "gate", run, dataset_id=dataset_id, params=params) as job:
        if model_id is None:
            raise SkipStep("no new candidate model to evaluate")
        with session_scope(db_url) as session:
            row = candidate(session, model_id)
            if row is None:
                raise SkipStep(f"model {model_id} is not a candidate")
            dataset = get_dataset(session, row.dataset_id)
            evaluation = eval_set.current_set(session, dataset)
            # The model serving the dataset, whatever its encoder: a candidate on a fine-tuned
            # encoder must beat the head it would replace, each judged on its own vectors.
            incumbent_row = promoted_model(session, row.dataset_id)
            baseline_row = latest_baseline(session, row.dataset_id)
            baseline = predictions_on(session, baseline_row.id, evaluation.version) if baseline_row else None
            head = load_head(session, row.id)
            incumbent_id = incumbent_row.id if incumbent_row else None
            incumbent_head = _incumbent_head(session, incumbent_id) if incumbent_id else None
            version, labels = row.version, list(dataset.labels)
            items = eval_items(session, dataset.id, evaluation.hashes)
            vectors = load_vectors(session, row.embedding_model_id, sorted(evaluation.hashes))  # type: ignore[arg-type]
            incumbent_vectors = vectors
            if incumbent_row is not None and incumbent_row.embedding_model_id != row.embedding_model_id:
                incumbent_vectors = load_vectors(
                    session,
                    incumbent_row.embedding_model_id,  # type: ignore[arg-type]
                    sorted(evaluation.hashes),
                )
        paired = incumbent_head is not None
        examples = [
            (h, label)
            for h, label in evaluation.examples
            if h in vectors and (not paired or h in incumbent_vectors)  # both judged on the same items
        ]
        y = np.asarray([labels.index(label) for _, label in examples], dtype=np.int64)
        x = np.stack([vectors[h] for h, _ in examples]) if examples else np.zeros((0, 1), dtype=np.float32)
        x_incumbent = np.stack([incumbent_vectors[h] for h, _ in examples]) if examples else x
        described = [{"text_hash": h, **items.get(h, {})} for h, _ in examples]
        probs = head.predict_proba(x, device="cpu") if examples else np.zeros((0, len(labels)))
        incumbent_probs = None
        # A changed label set: the old model cannot compete.
        if incumbent_head is not None and examples and incumbent_head.labels == labels:
            incumbent_probs = incumbent_head.predict_proba(x_incumbent, device="cpu")
        baseline_pred = (
            np.asarray([baseline[h] for h, _ in examples])
            if baseline and all(h in baseline for h, _ in examples)
            else None
        )
        decision = decide(
            y,
            labels,
            probs.argmax(axis=1),
            incumbent_probs.argmax(axis=1) if incumbent_probs is not None else None,
            min_f1=min_f1,
            min_gain=min_gain,
            min_eval_per_label=min_eval_per_label,
            baseline_pred=baseline_pred,
            require_baseline=require_baseline,
            seed=model_id,
        )
        with session_scope(db_url) as session:
            row = candidate(session, model_id)
            if row is None:
                raise SkipStep(f"model {model_id} was decided by another run meanwhile")
            if examples:
                store_evaluation(session, model_id, evaluation.version, evaluation_report(probs, y, labels, described))
                if incumbent_probs is not None and incumbent_id is not None:
                    store_evaluation(
                        session,
                        incumbent_id,
                        evaluation.version,
                        evaluation_report(incumbent_probs, y, labels, described),
                    )
            apply_decision(session, row, decision, evaluation.version)
        verb = "promoted" if decision.promoted else ("rejected" if decision.decided else "not decided on")
        job.done(f"{verb} {version}: {decision.reason}", promoted=decision.promoted, eval_size=len(y))
        job.result = {
            "model_id": model_id,
            "version": version,
            "promoted": decision.promoted,
            "decided": decision.decided,
            "reason": decision.reason,
            "eval_version": evaluation.version,
        }
    return job.result
