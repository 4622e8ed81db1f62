"""train_classifier: train a head on the embeddings of labeled, non-conflict tasks, then gate it.

``run_train`` records an experiment (hyperparameters, data snapshot, per-epoch metrics) and a
candidate model with its artifact; ``run_gate`` promotes or rejects the candidate. Training
skips when there are too few labels or none new since the last experiment on this data.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Experiment, ExperimentEpoch, Item, ModelStatus, ModelVersion, Task, TaskStatus
from include.db.session import session_scope
from include.ml.embeddings.backends import DEFAULT_MODEL, EmbeddingBackend, backend_for
from include.ml.embeddings.store import load_vectors
from include.ml.registry import DEFAULT_MIN_F1, apply_decision, decide, load_holdout, promoted_model, save_holdout
from include.ml.training.model import TrainedHead
from include.ml.training.train import EpochRecord, TrainParams, train_head
from include.pipelines.embed_items import embed_dataset
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services.datasets import get_dataset

log = logging.getLogger(__name__)

DEFAULT_MIN_LABELS = 20


def labeled_examples(session: Session, dataset_id: int) -> list[tuple[str, str]]:
    """(text hash, label) of labeled tasks; conflicts stay out until they are resolved."""
    rows = session.execute(
        select(Item.text_hash, Task.label)
        .join(Item, Item.id == Task.item_id)
        .where(Task.dataset_id == dataset_id, Task.status == TaskStatus.LABELED, Task.label.is_not(None))
        .order_by(Item.text_hash)
    ).tuples()
    return [(str(h), str(label)) for h, label in rows]


def snapshot_of(examples: list[tuple[str, str]], embedding_model: str) -> str:
    digest = hashlib.sha256(embedding_model.encode())
    for text_hash, label in examples:
        digest.update(f"{text_hash}:{label};".encode())
    return digest.hexdigest()


def _last_snapshot(session: Session, dataset_id: int) -> tuple[int, str] | None:
    row = session.execute(
        select(Experiment.id, Experiment.params)
        .where(Experiment.dataset_id == dataset_id, Experiment.status == "finished")
        .order_by(Experiment.id.desc())
        .limit(1)
    ).first()
    return (int(row[0]), str((row[1] or {}).get("data_snapshot", ""))) if row else None


def run_train(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int,
    params: TrainParams,
    model_dir: Path,
    embedding_model: str = DEFAULT_MODEL,
    min_labels: int = DEFAULT_MIN_LABELS,
    backend: EmbeddingBackend | None = None,
    force: bool = False,
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
            labels = list(dataset.labels)
            examples = [(h, lbl) for h, lbl in labeled_examples(session, dataset_id) if lbl in labels]
            snapshot = snapshot_of(examples, embedding_model)
            last = _last_snapshot(session, dataset_id)
        if len(examples) < min_labels:
            raise SkipStep(f"{len(examples)} labeled tasks; training needs at least {min_labels}")
        if not force and last is not None and last[1] == snapshot:
            raise SkipStep(f"no new labels since experiment {last[0]}")

        backend = backend or backend_for(embedding_model)
        embed_dataset(db_url, backend, dataset_id)  # only texts not embedded yet
        with session_scope(db_url) as session:
            from include.ml.embeddings.store import get_model

            emb_model = get_model(session, backend.name)
            assert emb_model is not None
            emb_model_id = emb_model.id
            vectors = load_vectors(session, emb_model_id, [h for h, _ in examples])
        hashes = [h for h, _ in examples if h in vectors]
        x = np.stack([vectors[h] for h in hashes])
        y = np.asarray([labels.index(lbl) for h, lbl in examples if h in vectors], dtype=np.int64)

        now = datetime.now(UTC)
        with session_scope(db_url) as session:
            experiment = Experiment(
                name=f"{dataset.name}-{params.kind}-{now:%Y%m%d-%H%M%S}",
                dataset_id=dataset_id,
                embedding_model_id=emb_model_id,
                params={
                    **asdict(params),
                    "embedding_model": embedding_model,
                    "n_labeled": len(hashes),
                    "data_snapshot": snapshot,
                    "labels": labels,
                },
                status="running",
                run_id=run.run_id,
            )
            session.add(experiment)
            session.flush()
            experiment_id = experiment.id

        def record_epoch(record: EpochRecord) -> None:
            with session_scope(db_url) as session:
                session.add(
                    ExperimentEpoch(
                        experiment_id=experiment_id,
                        epoch=record.epoch,
                        train_loss=record.train_loss,
                        val_loss=record.val_loss,
                        metrics={**record.metrics, "seconds": record.seconds},
                    )
                )
            if record.epoch % 10 == 0 or record.epoch == 1:
                job.progress(
                    f"epoch {record.epoch}: train loss {record.train_loss:.4f}, val loss {record.val_loss:.4f}, "
                    f"val F1 {record.metrics['f1']:.3f}",
                    epoch=record.epoch,
                )

        try:
            result = train_head(x, y, labels, backend.name, params, on_epoch=record_epoch)
        except Exception:
            with session_scope(db_url) as session:
                failed = session.get_one(Experiment, experiment_id)
                failed.status, failed.finished_at = "failed", datetime.now(UTC)
            raise
        version = f"{params.kind}-ds{dataset_id}-e{experiment_id}"
        artifact = result.head.save(model_dir / version)
        assert result.val_idx is not None
        save_holdout(artifact, [hashes[i] for i in result.val_idx], [int(y[i]) for i in result.val_idx])
        with session_scope(db_url) as session:
            experiment = session.get_one(Experiment, experiment_id)
            experiment.status, experiment.finished_at = "finished", datetime.now(UTC)
            experiment.metrics = {**result.metrics, "best_epoch": result.best_epoch, "epochs": len(result.history)}
            experiment.device = result.device
            experiment.n_train = len(result.train_idx) if result.train_idx is not None else len(hashes)
            experiment.n_val = len(result.val_idx)
            model = ModelVersion(
                version=version,
                kind=params.kind,
                status=ModelStatus.CANDIDATE,
                experiment_id=experiment_id,
                dataset_id=dataset_id,
                embedding_model_id=emb_model_id,
                labels=labels,
                metrics=result.metrics,
                artifact_path=str(artifact),
            )
            session.add(model)
            session.flush()
            model_id = model.id
        job.done(
            f"trained {version} on {len(hashes)} labels ({result.device}, {len(result.history)} epochs): "
            f"val F1 {result.metrics['f1']:.3f}, ROC-AUC {result.metrics['roc_auc']:.3f}, "
            f"ECE {result.metrics['ece']:.3f}",
            labels=len(hashes),
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
    db_url: str, run: RunRef, *, dataset_id: int, model_id: int | None, min_f1: float = DEFAULT_MIN_F1
) -> dict[str, Any]:
    """Promote the candidate if it beats the promoted model on its held-out set, else reject it."""
    with tracked_job(
        db_url, "gate", run, dataset_id=dataset_id, params={"model_id": model_id, "min_f1": min_f1}
    ) as job:
        if model_id is None:
            raise SkipStep("no new candidate model to evaluate")
        with session_scope(db_url) as session:
            candidate_row = session.get(ModelVersion, model_id)
            if candidate_row is None or candidate_row.status != ModelStatus.CANDIDATE:
                raise SkipStep(f"model {model_id} is not a candidate")
            incumbent_row = promoted_model(session, candidate_row.dataset_id, candidate_row.embedding_model_id)
            incumbent_path = incumbent_row.artifact_path if incumbent_row else None
            hashes, y_val = load_holdout(Path(candidate_row.artifact_path))
            vectors = load_vectors(session, candidate_row.embedding_model_id, hashes)
            version = candidate_row.version
        x_val = np.stack([vectors[h] for h in hashes])
        candidate = TrainedHead.load(Path(candidate_row.artifact_path))
        incumbent = TrainedHead.load(Path(incumbent_path)) if incumbent_path and Path(incumbent_path).exists() else None
        decision = decide(candidate, incumbent, x_val, y_val, min_f1=min_f1)
        with session_scope(db_url) as session:
            apply_decision(session, session.get_one(ModelVersion, model_id), decision)
        verb = "promoted" if decision.promoted else "rejected"
        job.done(f"{verb} {version}: {decision.reason}", promoted=decision.promoted)
        job.result = {
            "model_id": model_id,
            "version": version,
            "promoted": decision.promoted,
            "reason": decision.reason,
        }
    return job.result
