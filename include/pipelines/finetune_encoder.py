"""finetune_encoder: tune the sentence encoder on the dataset's labels, register it as a new
embedding model, re-embed the dataset with it and train the default head on top: a candidate
that then goes through the same promotion gate as any head.

The tuned encoder is an ordinary embedding model (``ft:ds<dataset>-<run>``, its own dimension,
vectors and HNSW index; weights in its registry row), so embedding new items, scoring,
pre-labeling and the gate use it as they use any other. Its labels are the snapshot's training
rows: the evaluation set is never paired, so the gate judges on texts the encoder never saw.
The candidate's validation figures are out-of-fold predictions of the head on texts the encoder
*was* tuned on, hence optimistic; only the gate's evaluation-set figures compare models.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from include.db.models import Embedding, EmbeddingBackend, EmbeddingModel, Experiment, Item
from include.db.session import session_scope
from include.ml.embeddings.backends import FineTunedEmbedder, SentenceTransformerEmbedder, backend_for, torch_device
from include.ml.embeddings.names import FINETUNED_PREFIX
from include.ml.embeddings.store import register_model
from include.ml.training.finetune import FinetuneDataError, FinetuneParams, FinetuneStep, finetune, pack
from include.ml.training.params import BASE_ENCODER, TrainParams
from include.ml.training.train import TrainingDataError, stratified_split, train_head
from include.pipelines.catalog import MIN_LABELS
from include.pipelines.embed_items import embed_dataset
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.pipelines.train_classifier import TrainingStopped, _training_set, kept_from_earlier_try, training_labels
from include.services import eval_set, retune
from include.services.datasets import get_dataset
from include.services.experiments import (
    data_snapshot,
    fail_experiment,
    finish_experiment,
    finished_by_earlier_try,
    is_stopped,
    record_epoch,
    record_items,
    start_experiment,
)
from include.services.registry import register_candidate

log = logging.getLogger(__name__)

VAL_SHARE = 0.15  # labeled texts held out of the pairs to give the contrastive loss a validation figure


def encoder_name(dataset_id: int, run: RunRef) -> str:
    """One name per dataset and run, so a retried try replaces its own encoder instead of adding one."""
    key = run.run_id or datetime.now(UTC).isoformat()
    return f"{FINETUNED_PREFIX}ds{dataset_id}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def trainable_encoder(base_model: str) -> Any:
    """A private copy of the base SentenceTransformer (the cached one serves embedding meanwhile)."""
    embedder = backend_for(base_model)
    if isinstance(embedder, FineTunedEmbedder):
        embedder = embedder.local()
    if not isinstance(embedder, SentenceTransformerEmbedder):
        raise ValueError(f"{base_model!r} is not a local sentence-transformers encoder, so it cannot be fine-tuned")
    return copy.deepcopy(embedder.sentence_transformer())


def _texts(session: Any, dataset_id: int, hashes: list[str]) -> dict[str, str]:
    rows = session.execute(
        select(Item.text_hash, Item.text).where(Item.dataset_id == dataset_id, Item.text_hash.in_(hashes))
    ).tuples()
    return {str(h): str(t) for h, t in rows}


class _StepRecorder:
    """Commits each progress record as an experiment "epoch" row (the page's loss curve grows
    while it trains) and stops when an admin stopped the experiment."""

    def __init__(self, db_url: str, experiment_id: int, job: JobHandle) -> None:
        self.db_url, self.experiment_id, self.job, self.n = db_url, experiment_id, job, 0

    def __call__(self, record: FinetuneStep) -> None:
        self.n += 1
        val = record.val_loss if np.isfinite(record.val_loss) else record.loss
        with session_scope(self.db_url) as session:
            metrics = {
                "step": record.step,
                "steps": record.steps,
                "pair_epoch": record.epoch,
                "seconds": record.seconds,
            }
            record_epoch(session, self.experiment_id, self.n, record.loss, val, metrics)
            stopped = is_stopped(session, self.experiment_id)
        if stopped:
            raise TrainingStopped(self.n)
        self.job.progress(
            f"encoder step {record.step}/{record.steps}: pair loss {record.loss:.4f}, held-out pair loss {val:.4f}",
            done=record.step,
            total=record.steps,
        )


def run_finetune_encoder(
    db_url: str,
    run: RunRef,
    *,
    dataset_id: int,
    tuning: FinetuneParams,
    base_model: str = BASE_ENCODER.default,
    min_labels: int = MIN_LABELS.default,
    head: TrainParams | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Fine-tune, register, re-embed, train the head; returns the candidate like train_classifier.

    ``reason``: why the loop decided to tune now (include.services.retune), for the job log.
    """
    head = head or TrainParams(seed=tuning.seed)
    params = {"dataset_id": dataset_id, "base_model": base_model, "min_labels": min_labels, **tuning.values()}
    with tracked_job(db_url, "finetune_encoder", run, dataset_id=dataset_id, params=params) as job:
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            evaluation, labels_snapshot, examples = training_labels(session, dataset)
            texts = _texts(session, dataset_id, [h for h, _ in examples])
            labels = list(dataset.labels)
        examples = [(h, label) for h, label in examples if h in texts and label in labels]
        if len(examples) < min_labels:
            raise SkipStep(
                f"{len(examples)} labeled tasks to tune on ({evaluation.size} more are reserved for evaluation); "
                f"fine-tuning needs at least {min_labels}"
            )
        y = np.asarray([labels.index(label) for _, label in examples], dtype=np.int64)
        try:
            pair_idx, val_idx = stratified_split(y, VAL_SHARE, tuning.seed)
        except TrainingDataError as exc:
            raise SkipStep(f"cannot fine-tune yet: {exc}") from None

        name = encoder_name(dataset_id, run)
        with session_scope(db_url) as session:
            earlier = finished_by_earlier_try(
                session,
                dataset_id=dataset_id,
                run_id=run.run_id,
                snapshot=data_snapshot(examples, name),
                params=head,
                extra={"finetune": {**tuning.values(), "base_model": base_model}},
            )
            if earlier is not None:  # killed after its work committed: keep it for the gate
                return kept_from_earlier_try(job, *earlier, encoder=name)
        if reason:
            job.progress(f"retuning: {reason}")
        job.progress(f"loading {base_model} to tune on {len(pair_idx)} labels ({len(val_idx)} held out)")
        encoder = trainable_encoder(base_model)
        encoder.to(torch_device())
        getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        dimension = int(getter())
        with session_scope(db_url) as session:
            row = register_model(session, name, EmbeddingBackend.SENTENCE_TRANSFORMERS.value, name, dimension)
            # A retried try replaces what a killed one left: its vectors came from other weights.
            session.execute(delete(Embedding).where(Embedding.model_id == row.id))
            row.artifact, row.artifact_sha256 = None, None
            row.dataset_id, row.origin = (
                dataset_id,
                {
                    "base_model": base_model,
                    "run_id": run.run_id,
                    "labeled_tasks": retune.labeled_tasks(session, dataset_id),  # the loop retunes when it doubles
                },
            )
            experiment_id = start_experiment(
                session,
                dataset=dataset,
                embedding_model_id=row.id,
                embedding_model=name,
                params=head,
                n_labeled=len(examples),
                snapshot=data_snapshot(examples, name),
                run_id=run.run_id,
                snapshot_id=labels_snapshot,
                extra={"finetune": {**tuning.values(), "base_model": base_model}},
            )
            experiment = session.get_one(Experiment, experiment_id)
            experiment.name = experiment.name.replace(f"-{head.kind}-", "-setfit-", 1)
        all_texts = [texts[h] for h, _ in examples]
        try:
            records = finetune(
                encoder,
                [all_texts[i] for i in pair_idx],
                y[pair_idx].tolist(),
                tuning,
                val_texts=[all_texts[i] for i in val_idx],
                val_y=y[val_idx].tolist(),
                on_step=_StepRecorder(db_url, experiment_id, job),
            )
        except TrainingStopped as stop:
            raise SkipStep(
                f"stopped by an admin after {stop.args[0]} records; experiment {experiment_id} keeps them"
            ) from None
        except FinetuneDataError as exc:
            with session_scope(db_url) as session:
                fail_experiment(session, experiment_id)
            raise SkipStep(f"cannot fine-tune yet: {exc}") from None
        except Exception:
            with session_scope(db_url) as session:
                fail_experiment(session, experiment_id)
            raise

        artifact, sha = pack(encoder)
        with session_scope(db_url) as session:
            row = session.get_one(EmbeddingModel, row.id)
            row.artifact, row.artifact_sha256 = artifact, sha
            row.origin = {
                **row.origin,
                "experiment_id": experiment_id,
                "pairs": records[-1].steps * tuning.batch_size if records else 0,
                "bytes": len(artifact),
            }
        job.progress(f"re-embedding dataset {dataset_id} with {name}")
        embedder = FineTunedEmbedder(name, db_url=db_url)
        embed_dataset(db_url, embedder, dataset_id, job=job)
        data = _training_set(db_url, embedder, examples, labels)
        result = train_head(data.x, data.y, data.labels, name, head)
        version = f"setfit-ds{dataset_id}-e{experiment_id}"
        tuned = {
            "encoder": name,
            "encoder_steps": records[-1].step if records else 0,
            "final_pair_loss": records[-1].loss if records else None,
            "final_val_pair_loss": records[-1].val_loss if records else None,
        }
        with session_scope(db_url) as session:
            record_items(session, experiment_id, [examples[i][0] for i in pair_idx], [examples[i][0] for i in val_idx])
            eval_set.mark_trained(session, dataset_id, data.hashes)
            finish_experiment(
                session,
                experiment_id,
                metrics={**result.metrics, **tuned, "epochs": len(records)},
                device=str(encoder.device),
                n_train=len(pair_idx),
                n_val=len(val_idx),
            )
            model = register_candidate(
                session,
                version=version,
                kind="setfit",
                experiment_id=experiment_id,
                dataset_id=dataset_id,
                embedding_model_id=data.embedding_model_id,
                labels=data.labels,
                metrics={**result.metrics, **tuned},
                artifact=result.head.to_bytes(),
            )
            model_id = model.id
        job.done(
            f"tuned {base_model} into {name} on {len(pair_idx)} labels ({encoder.device}); {version}: "
            f"val F1 {result.metrics['f1']:.3f} (optimistic: the encoder saw these labels)",
            labels=len(examples),
        )
        job.result = {
            "model_id": model_id,
            "version": version,
            "metrics": result.metrics,
            "device": str(encoder.device),
            "experiment_id": experiment_id,
            "encoder": name,
        }
    return job.result
