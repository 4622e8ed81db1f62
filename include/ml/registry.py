"""Model registry: candidates, the promotion gate, and the promoted model of a dataset.

A candidate is promoted only if it beats the promoted model on the same held-out set (the
candidate's validation split, on which both are evaluated now), or, when there is none yet,
reaches a minimum F1. Otherwise it is rejected and the reason is recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import ModelStatus, ModelVersion
from include.ml.training.metrics import classification_metrics
from include.ml.training.model import TrainedHead

DEFAULT_MIN_F1 = 0.6


@dataclass
class GateDecision:
    promoted: bool
    reason: str
    candidate_f1: float
    incumbent_f1: float | None


def promoted_model(session: Session, dataset_id: int, embedding_model_id: int | None = None) -> ModelVersion | None:
    stmt = select(ModelVersion).where(
        ModelVersion.dataset_id == dataset_id, ModelVersion.status == ModelStatus.PROMOTED
    )
    if embedding_model_id is not None:
        stmt = stmt.where(ModelVersion.embedding_model_id == embedding_model_id)
    return session.scalar(stmt.order_by(ModelVersion.promoted_at.desc()).limit(1))


def holdout_path(artifact: Path) -> Path:
    return Path(artifact).with_suffix(".holdout.json")


def save_holdout(artifact: Path, hashes: list[str], labels: list[int]) -> None:
    """The validation split a candidate was chosen on, so the gate can score the incumbent on it."""
    holdout_path(artifact).write_text(json.dumps({"text_hashes": hashes, "labels": labels}))


def load_holdout(artifact: Path) -> tuple[list[str], np.ndarray]:
    data = json.loads(holdout_path(artifact).read_text())
    return list(data["text_hashes"]), np.asarray(data["labels"], dtype=np.int64)


def decide(
    candidate: TrainedHead,
    incumbent: TrainedHead | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    min_f1: float = DEFAULT_MIN_F1,
    min_gain: float = 0.0,
) -> GateDecision:
    """Compare candidate and incumbent on the same held-out examples."""
    cand = classification_metrics(candidate.predict_proba(x_val, device="cpu"), y_val)["f1"]
    if incumbent is None:
        if cand >= min_f1:
            return GateDecision(True, f"first model: F1 {cand:.3f} >= minimum {min_f1:.2f}", cand, None)
        return GateDecision(False, f"first model: F1 {cand:.3f} below minimum {min_f1:.2f}", cand, None)
    if incumbent.labels != candidate.labels:
        return GateDecision(True, "label set changed since the promoted model: replacing it", cand, None)
    inc = classification_metrics(incumbent.predict_proba(x_val, device="cpu"), y_val)["f1"]
    if cand > inc + min_gain:
        return GateDecision(
            True, f"F1 {cand:.3f} beats the promoted model's {inc:.3f} on the same held-out set", cand, inc
        )
    return GateDecision(
        False, f"F1 {cand:.3f} does not beat the promoted model's {inc:.3f} on the same held-out set", cand, inc
    )


def apply_decision(session: Session, candidate: ModelVersion, decision: GateDecision) -> None:
    """Promote (retiring the incumbent) or reject the candidate, recording why."""
    now = datetime.now(UTC)
    candidate.metrics = {
        **(candidate.metrics or {}),
        "gate_f1": decision.candidate_f1,
        "incumbent_f1": decision.incumbent_f1,
    }
    candidate.reason = decision.reason
    if not decision.promoted:
        candidate.status = ModelStatus.REJECTED
        return
    current = promoted_model(session, candidate.dataset_id, candidate.embedding_model_id)
    if current is not None and current.id != candidate.id:
        current.status = ModelStatus.RETIRED
        session.flush()  # the one-promoted-per-dataset index must see the old one go first
    candidate.status = ModelStatus.PROMOTED
    candidate.promoted_at = now
    session.flush()
