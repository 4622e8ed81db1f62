"""The promotion gate as a step: judge a candidate against the model serving its dataset.

Both are scored on the dataset's frozen evaluation set, each on its own vectors (a candidate on
a fine-tuned encoder must beat the head it would replace); promotion only when the candidate is
better beyond noise (include.ml.gate). Both get an evaluation report. Serves train_classifier,
sweep, finetune_encoder and the nightly loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from include.db.locks import LockBusy, advisory_lock
from include.db.models import ExperimentItem, ModelVersion
from include.db.session import session_scope
from include.ml.evaluation import evaluation_report
from include.ml.gate import GateDecision, GatePolicy, decide
from include.ml.training.model import TrainedHead
from include.pipelines.catalog import GateValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services import eval_set
from include.services.datasets import eval_items, get_dataset
from include.services.evaluations import predictions_on
from include.services.evaluations import store as store_evaluation
from include.services.registry import (
    ArtifactMissing,
    apply_decision,
    candidate,
    latest_baseline,
    load_head,
    promoted_model,
)
from include.services.vectors import load_vectors

log = logging.getLogger(__name__)

REJUDGE_LIMIT = 3


def _incumbent_head(session: Any, model_id: int) -> TrainedHead | None:
    """The promoted model's head, or None (with a warning) when it cannot be read."""
    try:
        return load_head(session, model_id)
    except ArtifactMissing as exc:
        log.warning("the incumbent cannot compete: %s", exc)
        return None


@dataclass
class Judgment:
    """One judgment of a candidate against the model serving its dataset when it was read."""

    decision: GateDecision
    incumbent_id: int | None
    eval_version: str
    version: str
    reports: list[tuple[int, dict[str, Any]]]  # (model id, evaluation report) to store
    eval_size: int
    left_out: int  # evaluation texts either model trained on
    waiting: int = 0  # evaluation items whose label does not count yet (waits for review)


def trained_hashes(session: Any, model_ids: list[int]) -> set[str]:
    """Texts the models' experiments trained or validated on: they cannot judge those models."""
    experiments = select(ModelVersion.experiment_id).where(ModelVersion.id.in_(model_ids))
    return {
        str(h)
        for h in session.scalars(select(ExperimentItem.text_hash).where(ExperimentItem.experiment_id.in_(experiments)))
    }


def _judge(db_url: str, model_id: int, policy: GatePolicy) -> Judgment:
    """Score the candidate and the promoted model on the frozen eval set, as they stand now."""
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
        # An evaluation text either model saw in training (admitted to the set while a long run
        # trained, or trained before the texts were reserved) would flatter it: left out.
        seen = trained_hashes(session, [model_id] + ([incumbent_id] if incumbent_id else []))
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
        if h in vectors and (not paired or h in incumbent_vectors) and h not in seen  # both judged on the same items
    ]
    left_out = sum(1 for h, _ in evaluation.examples if h in seen)
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
        np.asarray([baseline[h] for h, _ in examples]) if baseline and all(h in baseline for h, _ in examples) else None
    )
    decision = decide(
        y,
        labels,
        probs.argmax(axis=1),
        incumbent_probs.argmax(axis=1) if incumbent_probs is not None else None,
        min_f1=policy.min_f1,
        min_gain=policy.min_gain,
        min_eval_per_label=policy.min_eval_per_label,
        baseline_pred=baseline_pred,
        require_baseline=policy.require_baseline,
        seed=model_id,
    )
    reports: list[tuple[int, dict[str, Any]]] = []
    if examples:
        reports.append((model_id, evaluation_report(probs, y, labels, described)))
        if incumbent_probs is not None and incumbent_id is not None:
            reports.append((incumbent_id, evaluation_report(incumbent_probs, y, labels, described)))
    return Judgment(decision, incumbent_id, evaluation.version, version, reports, len(y), left_out, evaluation.waiting)


def _apply(db_url: str, model_id: int, judged: Judgment) -> bool:
    """Record the judgment; False (nothing written) when the serving model changed since it was read."""
    with session_scope(db_url) as session:
        row = candidate(session, model_id)
        if row is None:
            raise SkipStep(f"model {model_id} was decided by another run meanwhile")
        serving = promoted_model(session, row.dataset_id)
        if (serving.id if serving else None) != judged.incumbent_id:
            return False
        for judged_id, report in judged.reports:
            store_evaluation(session, judged_id, judged.eval_version, report)
        apply_decision(session, row, judged.decision, judged.eval_version)
    return True


def run_gate(db_url: str, run: RunRef, values: GateValues, *, model_id: int | None) -> dict[str, Any]:
    """Score the candidate and the promoted model on the frozen eval set; promote only when the
    candidate is better beyond noise (see include.ml.gate). Both get an evaluation report.

    One gate per dataset at a time (train_classifier, the nightly loop and finetune_encoder may
    judge candidates of one dataset together): the later one waits and faces the winner of the
    earlier, and a judgment whose incumbent changed before it was recorded is made again.
    """
    with tracked_job(db_url, "gate", run, values, params={"model_id": model_id}) as job:
        if model_id is None:
            raise SkipStep("no new candidate model to evaluate")
        with session_scope(db_url) as session:
            row = candidate(session, model_id)
            if row is None:
                raise SkipStep(f"model {model_id} is not a candidate")
            dataset_id = row.dataset_id
        with advisory_lock(db_url, "gate", dataset_id):
            for _ in range(REJUDGE_LIMIT):
                judged = _judge(db_url, model_id, values.policy)
                if _apply(db_url, model_id, judged):
                    break
                log.info("the model serving dataset %s changed during the gate: judging again", dataset_id)
            else:
                raise LockBusy(f"the model serving dataset {dataset_id} kept changing during the gate")
        decision = judged.decision
        verb = "promoted" if decision.promoted else ("rejected" if decision.decided else "not decided on")
        extra = f" ({judged.left_out} evaluation texts a model trained on left out)" if judged.left_out else ""
        if judged.waiting:  # the dataset's evaluation asks for checked labels (label_policy)
            extra += (
                f"; {judged.waiting} evaluation items wait for a reviewer or a second annotator "
                "(review queue, filter: evaluation items)"
            )
        job.done(
            f"{verb} {judged.version}: {decision.reason}{extra}",
            promoted=decision.promoted,
            eval_size=judged.eval_size,
            left_out=judged.left_out,
            waiting_for_review=judged.waiting,
        )
        job.result = {
            "model_id": model_id,
            "version": judged.version,
            "promoted": decision.promoted,
            "decided": decision.decided,
            "reason": decision.reason,
            "eval_version": judged.eval_version,
            "faced": judged.incumbent_id,
            "left_out": judged.left_out,
        }
    return job.result
