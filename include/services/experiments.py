"""Experiment tracking: a training run's parameters, data snapshot, epochs and outcome.

The snapshot is a hash of the labeled examples (text hash and label) and the embedding model, so
the loop can tell "nothing new to learn from" without comparing rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import (
    JOB_STEP,
    Dataset,
    Experiment,
    ExperimentEpoch,
    ExperimentItem,
    Item,
    Job,
    ModelVersion,
    Task,
    TaskStatus,
)
from include.errors import Conflict, NotFound
from include.ml.training.params import TrainParams


def labeled_examples(session: Session, dataset: Dataset) -> list[tuple[str, str]]:
    """(text hash, label) of labeled tasks with a label of the dataset's set, by text hash.

    Conflicts stay out until they are resolved.
    """
    rows = session.execute(
        select(Item.text_hash, Task.label)
        .join(Item, Item.id == Task.item_id)
        .where(
            Task.dataset_id == dataset.id,
            Task.status == TaskStatus.LABELED,
            Task.label.in_(list(dataset.labels)),
        )
        .order_by(Item.text_hash)
    ).tuples()
    return [(str(h), str(label)) for h, label in rows]


def data_snapshot(examples: Sequence[tuple[str, str]], embedding_model: str) -> str:
    digest = hashlib.sha256(embedding_model.encode())
    for text_hash, label in examples:
        digest.update(f"{text_hash}:{label};".encode())
    return digest.hexdigest()


def last_snapshot(session: Session, dataset_id: int) -> tuple[int, str] | None:
    """(experiment id, data snapshot) of the dataset's latest finished experiment."""
    row = session.execute(
        select(Experiment.id, Experiment.params)
        .where(Experiment.dataset_id == dataset_id, Experiment.status == "finished")
        .order_by(Experiment.id.desc())
        .limit(1)
    ).first()
    return (int(row[0]), str((row[1] or {}).get("data_snapshot", ""))) if row else None


def start_experiment(
    session: Session,
    *,
    dataset: Dataset,
    embedding_model_id: int,
    embedding_model: str,
    params: TrainParams,
    n_labeled: int,
    snapshot: str,
    run_id: str | None,
    snapshot_id: int | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """A running experiment; returns its id. ``extra`` joins its parameters (a sweep's trial, a config).

    A try of the same task that was killed (a worker lost, an OOM kill) left its experiment
    running, half-written: the retry replaces it, so the run ends with one experiment and its
    epochs once.
    """
    now = datetime.now(UTC)
    if run_id is not None:
        for stale in session.scalars(
            select(Experiment).where(
                Experiment.run_id == run_id, Experiment.dataset_id == dataset.id, Experiment.status == "running"
            )
        ):
            if _same_trial(stale, params, extra):
                session.delete(stale)
        session.flush()
    experiment = Experiment(
        name=f"{dataset.name}-{params.kind}-{now:%Y%m%d-%H%M%S}",
        dataset_id=dataset.id,
        embedding_model_id=embedding_model_id,
        params={
            **asdict(params),
            "embedding_model": embedding_model,
            "n_labeled": n_labeled,
            "data_snapshot": snapshot,
            "labels": list(dataset.labels),
            **(extra or {}),
        },
        status="running",
        run_id=run_id,
        snapshot_id=snapshot_id,
    )
    session.add(experiment)
    session.flush()
    return experiment.id


def _same_trial(experiment: Experiment, params: TrainParams, extra: dict[str, Any] | None) -> bool:
    """The experiment is this task's (and this sweep trial's): its extra parameters match."""
    base = set(asdict(params)) | {"embedding_model", "n_labeled", "data_snapshot", "labels"}
    return {k: v for k, v in experiment.params.items() if k not in base} == (extra or {})


def finished_by_earlier_try(
    session: Session,
    *,
    dataset_id: int,
    run_id: str | None,
    snapshot: str,
    params: TrainParams,
    extra: dict[str, Any] | None,
) -> tuple[Experiment, ModelVersion] | None:
    """This task's experiment and model when an earlier try of it finished them on the same labels.

    A worker killed after the work committed but before Airflow heard of it: the retry must hand
    the gate that model, not train again, and not skip as "no new labels" (the gate then never
    sees the model).
    """
    if run_id is None:
        return None
    rows = session.execute(
        select(Experiment, ModelVersion)
        .join(ModelVersion, ModelVersion.experiment_id == Experiment.id)
        .where(Experiment.run_id == run_id, Experiment.dataset_id == dataset_id, Experiment.status == "finished")
        .order_by(Experiment.id.desc())
    ).all()
    for experiment, model in rows:
        if experiment.params.get("data_snapshot") == snapshot and _same_trial(experiment, params, extra):
            return experiment, model
    return None


def record_epoch(
    session: Session, experiment_id: int, epoch: int, train_loss: float, val_loss: float, metrics: dict[str, Any]
) -> None:
    session.add(
        ExperimentEpoch(
            experiment_id=experiment_id, epoch=epoch, train_loss=train_loss, val_loss=val_loss, metrics=metrics
        )
    )


def record_items(session: Session, experiment_id: int, train: list[str], val: list[str]) -> None:
    """Which texts the run trained and validated on (the model's lineage)."""
    rows = [{"experiment_id": experiment_id, "text_hash": h, "split": "train"} for h in train]
    rows += [{"experiment_id": experiment_id, "text_hash": h, "split": "val"} for h in val]
    if rows:
        session.execute(insert(ExperimentItem).on_conflict_do_nothing(), rows)


TRAINING_STEPS = ("train_classifier", "sweep_trial", "finetune_encoder")  # the job steps that run an experiment


class ExperimentNotFound(NotFound):
    """The experiment id names no experiment."""


class ExperimentNotRunning(Conflict):
    """Only a running experiment can be stopped; the message says what it is instead."""


def get_experiment(session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise ExperimentNotFound(f"experiment {experiment_id} not found")
    return experiment


def request_stop(session: Session, experiment_id: int) -> Experiment:
    """Mark a running experiment stopped; its recorded epochs stay.

    The training step sees the mark after its next epoch and ends without registering a model
    (see include.pipelines.train_classifier); the caller also asks Airflow to end the run.
    """
    experiment = session.get(Experiment, experiment_id, with_for_update=True)
    if experiment is None:
        raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
    if experiment.status != "running":
        raise ExperimentNotRunning(f"experiment {experiment_id} is {experiment.status}; only a running one can stop")
    experiment.status, experiment.finished_at = "stopped", datetime.now(UTC)
    return experiment


def is_stopped(session: Session, experiment_id: int) -> bool:
    return session.scalar(select(Experiment.status).where(Experiment.id == experiment_id)) == "stopped"


def experiment_dag_id(session: Session, experiment: Experiment) -> str | None:
    """The Airflow DAG whose run trained this experiment (from the run's train_classifier job)."""
    if not experiment.run_id:
        return None
    return session.scalar(
        select(Job.dag_id)
        .where(Job.run_id == experiment.run_id, Job.step.in_(TRAINING_STEPS), Job.kind == JOB_STEP)
        .limit(1)
    )


def progress_message(session: Session, experiment: Experiment) -> str | None:
    """The training job's latest progress line ("epoch 40: train loss ..."), if the run is tracked."""
    if not experiment.run_id:
        return None
    return session.scalar(
        select(Job.message)
        .where(Job.run_id == experiment.run_id, Job.step.in_(TRAINING_STEPS), Job.kind == JOB_STEP)
        .order_by(Job.id.desc())
        .limit(1)
    )


def fail_experiment(session: Session, experiment_id: int) -> None:
    """Failed, unless an admin stopped it (a stop ends the run with an error on purpose)."""
    experiment = session.get_one(Experiment, experiment_id)
    if experiment.status == "running":
        experiment.status, experiment.finished_at = "failed", datetime.now(UTC)


def finish_experiment(
    session: Session,
    experiment_id: int,
    *,
    metrics: dict[str, Any],
    device: str,
    n_train: int,
    n_val: int,
) -> None:
    experiment = session.get_one(Experiment, experiment_id)
    experiment.status, experiment.finished_at = "finished", datetime.now(UTC)
    experiment.metrics = metrics
    experiment.device = device
    experiment.n_train = n_train
    experiment.n_val = n_val
