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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete

from include.db.models import Embedding, EmbeddingBackend, EmbeddingModel, Experiment
from include.db.session import session_scope
from include.ml.embeddings.backends import FineTunedEmbedder, SentenceTransformerEmbedder, torch_device
from include.ml.embeddings.names import FINETUNED_PREFIX
from include.ml.training.finetune import FinetuneDataError, FinetuneStep, finetune, pack
from include.ml.training.params import TrainParams
from include.ml.training.train import TrainingDataError, TrainResult, stratified_split, train_head
from include.pipelines.catalog import FinetuneValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.pipelines.training.adoption import adopt_earlier_try
from include.pipelines.training.data import (
    TrainingSet,
    load_training_set,
    reserve_training,
    texts_of,
    training_labels,
)
from include.pipelines.training.embedding import embed_dataset
from include.pipelines.training.progress import ProgressRecorder, encoder_progress, supervised
from include.services import eval_set, retune
from include.services.datasets import get_dataset
from include.services.embedding_models import StoredWeights, embedder_for
from include.services.experiments import data_snapshot, finish_experiment, record_items, start_experiment
from include.services.registry import register_candidate
from include.services.vectors import register_model

log = logging.getLogger(__name__)

VAL_SHARE = 0.15  # labeled texts held out of the pairs to give the contrastive loss a validation figure


def encoder_name(dataset_id: int, run: RunRef) -> str:
    """One name per dataset and run, so a retried try replaces its own encoder instead of adding one."""
    key = run.run_id or datetime.now(UTC).isoformat()
    return f"{FINETUNED_PREFIX}ds{dataset_id}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def trainable_encoder(base_model: str, db_url: str) -> Any:
    """A private copy of the base SentenceTransformer (the cached one serves embedding meanwhile)."""
    embedder = embedder_for(base_model, db_url)
    if isinstance(embedder, FineTunedEmbedder):
        embedder = embedder.local()
    if not isinstance(embedder, SentenceTransformerEmbedder):
        raise ValueError(f"{base_model!r} is not a local sentence-transformers encoder, so it cannot be fine-tuned")
    return copy.deepcopy(embedder.sentence_transformer())


@dataclass(frozen=True)
class Plan:
    """What one tune learns from: the labeled rows (outside the evaluation set), their texts and
    label indices, and which of them are paired and which held out."""

    examples: list[tuple[str, str]]
    texts: list[str]
    labels: list[str]
    y: np.ndarray
    pair_idx: np.ndarray
    val_idx: np.ndarray
    snapshot_id: int | None
    eval_size: int


def _plan(session: Any, values: FinetuneValues) -> Plan:
    """The labels to tune on, or a skip that says why there are not enough."""
    dataset = get_dataset(session, values.dataset_id)
    found = training_labels(session, dataset)
    texts = texts_of(session, values.dataset_id, [h for h, _ in found.examples])
    labels = list(dataset.labels)
    examples = [(h, label) for h, label in found.examples if h in texts and label in labels]
    if len(examples) < values.min_labels:
        raise SkipStep(
            f"{len(examples)} labeled tasks to tune on ({found.evaluation.size} more are reserved for evaluation); "
            f"fine-tuning needs at least {values.min_labels}"
        )
    y = np.asarray([labels.index(label) for _, label in examples], dtype=np.int64)
    try:
        pair_idx, val_idx = stratified_split(y, VAL_SHARE, values.tuning.seed)
    except TrainingDataError as exc:
        raise SkipStep(f"cannot fine-tune yet: {exc}") from None
    reserve_training(session, values.dataset_id, examples)
    return Plan(examples, [texts[h] for h, _ in examples], labels, y, pair_idx, val_idx, found.snapshot_id,
                found.evaluation.size)  # fmt: skip


def _start(db_url: str, values: FinetuneValues, run: RunRef, plan: Plan, name: str, head: TrainParams,
           dimension: int, snapshot: str, origin: dict[str, Any]) -> tuple[int, int]:  # fmt: skip
    """Register the encoder (a retried try replaces what a killed one left: its vectors came
    from other weights) and start its experiment; returns (encoder id, experiment id)."""
    with session_scope(db_url) as session:
        row = register_model(session, name, EmbeddingBackend.SENTENCE_TRANSFORMERS.value, name, dimension)
        session.execute(delete(Embedding).where(Embedding.model_id == row.id))
        row.artifact, row.artifact_sha256 = None, None
        row.dataset_id = values.dataset_id
        # labeled_tasks: the loop retunes when the dataset's labels double from here
        row.origin = {**origin, "labeled_tasks": retune.labeled_tasks(session, values.dataset_id)}
        experiment_id = start_experiment(
            session,
            dataset=get_dataset(session, values.dataset_id),
            embedding_model_id=row.id,
            embedding_model=name,
            params=head,
            n_labeled=len(plan.examples),
            snapshot=snapshot,
            run_id=run.run_id,
            snapshot_id=plan.snapshot_id,
            extra=_extra(values),
        )
        experiment = session.get_one(Experiment, experiment_id)
        experiment.name = experiment.name.replace(f"-{head.kind}-", "-setfit-", 1)
        return row.id, experiment_id


def _tune(db_url: str, encoder: Any, plan: Plan, values: FinetuneValues, recorder: ProgressRecorder[FinetuneStep]
          ) -> list[FinetuneStep]:  # fmt: skip
    """Tune ``encoder`` in place on the plan's pairs; a stop or too few pairs ends the step."""
    with supervised(db_url, recorder.experiment_id, "records"):
        try:
            return finetune(
                encoder,
                [plan.texts[i] for i in plan.pair_idx],
                plan.y[plan.pair_idx].tolist(),
                values.tuning,
                val_texts=[plan.texts[i] for i in plan.val_idx],
                val_y=plan.y[plan.val_idx].tolist(),
                on_step=recorder,
            )
        except FinetuneDataError as exc:
            raise SkipStep(f"cannot fine-tune yet: {exc}") from None


def _extra(values: FinetuneValues) -> dict[str, Any]:
    """How the encoder was tuned, in its experiment's parameters (earlier tries are matched on it)."""
    return {"finetune": {**values.tuning.values(), "base_model": values.base_model}}


def _store_encoder(db_url: str, encoder_id: int, encoder: Any, records: list[FinetuneStep], values: FinetuneValues,
                   experiment_id: int) -> None:  # fmt: skip
    """The tuned weights into the encoder's registry row, so any worker can load them."""
    artifact, sha = pack(encoder)
    with session_scope(db_url) as session:
        row = session.get_one(EmbeddingModel, encoder_id)
        row.artifact, row.artifact_sha256 = artifact, sha
        pairs = records[-1].steps * values.tuning.batch_size if records else 0
        row.origin = {**row.origin, "experiment_id": experiment_id, "pairs": pairs, "bytes": len(artifact)}


def _register(db_url: str, values: FinetuneValues, plan: Plan, data: TrainingSet, result: TrainResult,
              experiment_id: int, tuned: dict[str, Any], records: int, device: str) -> int:  # fmt: skip
    """Record the lineage, finish the experiment and register the candidate; returns its id."""
    with session_scope(db_url) as session:
        record_items(
            session,
            experiment_id,
            [plan.examples[i][0] for i in plan.pair_idx],
            [plan.examples[i][0] for i in plan.val_idx],
        )
        eval_set.mark_trained(session, values.dataset_id, data.hashes)
        finish_experiment(
            session,
            experiment_id,
            metrics={**result.metrics, **tuned, "epochs": records},
            device=device,
            n_train=len(plan.pair_idx),
            n_val=len(plan.val_idx),
        )
        model = register_candidate(
            session,
            version=f"setfit-ds{values.dataset_id}-e{experiment_id}",
            kind="setfit",
            experiment_id=experiment_id,
            dataset_id=values.dataset_id,
            embedding_model_id=data.embedding_model_id,
            labels=data.labels,
            metrics={**result.metrics, **tuned},
            artifact=result.head.to_bytes(),
        )
        return model.id


def run_finetune_encoder(
    db_url: str,
    run: RunRef,
    values: FinetuneValues,
    *,
    head: TrainParams | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Fine-tune, register, re-embed, train the head; returns the candidate like train_classifier.

    ``reason``: why the loop decided to tune now (include.services.retune), for the job log.
    """
    head = head or TrainParams(seed=values.tuning.seed)
    dataset_id, name = values.dataset_id, encoder_name(values.dataset_id, run)
    with tracked_job(db_url, "finetune_encoder", run, values) as job:
        with session_scope(db_url) as session:
            plan = _plan(session, values)
            snapshot = data_snapshot(plan.examples, name)
            kept = adopt_earlier_try(  # killed after its work committed: keep it for the gate
                session, job, run, dataset_id=dataset_id, snapshot=snapshot, params=head, extra=_extra(values),
                encoder=name,
            )  # fmt: skip
            if kept is not None:
                return kept
        if reason:
            job.progress(f"retuning: {reason}")
        job.progress(f"loading {values.base_model} to tune on {len(plan.pair_idx)} labels ({len(plan.val_idx)} out)")
        encoder = trainable_encoder(values.base_model, db_url)
        encoder.to(torch_device())
        getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        dimension = int(getter())
        origin = {"base_model": values.base_model, "run_id": run.run_id}
        encoder_id, experiment_id = _start(db_url, values, run, plan, name, head, dimension, snapshot, origin)
        records = _tune(db_url, encoder, plan, values, ProgressRecorder(db_url, experiment_id, job, encoder_progress))
        _store_encoder(db_url, encoder_id, encoder, records, values, experiment_id)
        job.progress(f"re-embedding dataset {dataset_id} with {name}")
        embedder = FineTunedEmbedder(name, StoredWeights(db_url))
        embed_dataset(db_url, embedder, dataset_id, job=job)
        data = load_training_set(db_url, embedder, plan.examples, plan.labels)
        result = train_head(data.x, data.y, data.labels, name, head)
        tuned = {
            "encoder": name,
            "encoder_steps": records[-1].step if records else 0,
            "final_pair_loss": records[-1].loss if records else None,
            "final_val_pair_loss": records[-1].val_loss if records else None,
        }
        device = str(encoder.device)
        model_id = _register(db_url, values, plan, data, result, experiment_id, tuned, len(records), device)
        version = f"setfit-ds{dataset_id}-e{experiment_id}"
        job.done(
            f"tuned {values.base_model} into {name} on {len(plan.pair_idx)} labels ({device}); {version}: "
            f"val F1 {result.metrics['f1']:.3f} (optimistic: the encoder saw these labels)",
            labels=len(plan.examples),
        )
        job.result = {
            "model_id": model_id,
            "version": version,
            "metrics": result.metrics,
            "device": device,
            "experiment_id": experiment_id,
            "encoder": name,
        }
    return job.result
