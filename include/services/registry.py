"""Model registry: candidates, the promoted model of a dataset, and gate decisions.

Whether a candidate is promoted is decided by :mod:`include.ml.gate`; this module records it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Dataset, Experiment, ModelStatus, ModelVersion
from include.errors import NotFound
from include.ml.gate import GateDecision
from include.ml.training.model import TrainedHead
from include.services.paging import DatasetPageQuery, Page, paginate

log = logging.getLogger(__name__)


def promoted_model(session: Session, dataset_id: int, embedding_model_id: int | None = None) -> ModelVersion | None:
    """The model serving the dataset (the last promoted, whatever its encoder), or the promoted
    model of one embedding model (each encoder keeps its own champion)."""
    stmt = select(ModelVersion).where(
        ModelVersion.dataset_id == dataset_id, ModelVersion.status == ModelStatus.PROMOTED
    )
    if embedding_model_id is not None:
        stmt = stmt.where(ModelVersion.embedding_model_id == embedding_model_id)
    return session.scalar(stmt.order_by(ModelVersion.promoted_at.desc()).limit(1))


def apply_decision(session: Session, candidate: ModelVersion, decision: GateDecision, eval_version: str) -> None:
    """Promote (retiring the incumbent) or reject the candidate, recording why, on which eval-set
    version, both models' scores and the interval of their difference. A refusal (too few
    evaluation labels) leaves it a candidate."""
    now = datetime.now(UTC)
    candidate.gate = {**decision.record(), "eval_version": eval_version, "decided_at": now.isoformat()}
    candidate.reason = decision.reason
    if not decision.decided:
        return
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


def register_candidate(
    session: Session,
    *,
    version: str,
    kind: str,
    experiment_id: int,
    dataset_id: int,
    embedding_model_id: int,
    labels: list[str],
    metrics: dict[str, Any],
    artifact: bytes,
) -> ModelVersion:
    """A new candidate in the registry, waiting for the gate; ``artifact`` is the head itself."""
    model = ModelVersion(
        version=version,
        kind=kind,
        status=ModelStatus.CANDIDATE,
        experiment_id=experiment_id,
        dataset_id=dataset_id,
        embedding_model_id=embedding_model_id,
        labels=labels,
        metrics=metrics,
        artifact_path="",
        artifact=artifact,
    )
    session.add(model)
    session.flush()
    return model


def register_baseline(
    session: Session, *, version: str, dataset_id: int, labels: list[str], metrics: dict[str, Any], reason: str
) -> ModelVersion:
    """An LLM baseline probe's result: a yardstick in the registry, never promoted."""
    model = ModelVersion(
        version=version,
        kind="llm-baseline",
        status=ModelStatus.BASELINE,
        dataset_id=dataset_id,
        embedding_model_id=None,
        labels=labels,
        metrics=metrics,
        artifact_path="",
        reason=reason,
    )
    session.add(model)
    session.flush()
    return model


def latest_baseline(session: Session, dataset_id: int) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.dataset_id == dataset_id, ModelVersion.status == ModelStatus.BASELINE)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )


def candidate(session: Session, model_id: int) -> ModelVersion | None:
    """The model if it still waits for the gate, else None."""
    row = session.get(ModelVersion, model_id)
    return row if row is not None and row.status == ModelStatus.CANDIDATE else None


class ModelNotFound(NotFound):
    """The model id names no model version."""


def get_model_version(session: Session, model_id: int) -> ModelVersion:
    model = session.get(ModelVersion, model_id)
    if model is None:
        raise ModelNotFound(f"model {model_id} not found")
    return model


def model_page(session: Session, query: DatasetPageQuery) -> Page[ModelVersion]:
    """Model versions, newest first, of one dataset or all."""
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if query.dataset_id is not None:
        stmt = stmt.where(ModelVersion.dataset_id == query.dataset_id)
    return paginate(session, stmt, query.page, query.limit, count=True)


def registry_rows(session: Session, limit: int = 200) -> list[tuple[ModelVersion, str, Experiment | None]]:
    """Newest models first with their dataset's name and experiment (the models page)."""
    rows = session.execute(
        select(ModelVersion, Dataset.name, Experiment)
        .join(Dataset, Dataset.id == ModelVersion.dataset_id)
        .outerjoin(Experiment, Experiment.id == ModelVersion.experiment_id)
        .order_by(ModelVersion.created_at.desc())
        .limit(limit)
    ).all()
    return [(m, str(name), e) for m, name, e in rows]


class ArtifactMissing(NotFound):
    """A model version whose head cannot be read; the message says which and why."""


def load_head(session: Session, model_id: int) -> TrainedHead:
    """The head of a model version, from its registry row (any worker can read it).

    Rows registered before heads moved into the database name a file instead; that file is read
    when this worker can see it.

    Raises:
        ArtifactMissing: no stored head, and no readable legacy file.
    """
    blob = session.scalar(select(ModelVersion.artifact).where(ModelVersion.id == model_id))
    if blob:
        return TrainedHead.from_bytes(bytes(blob))
    path = session.scalar(select(ModelVersion.artifact_path).where(ModelVersion.id == model_id))
    if path and Path(path).exists():
        return TrainedHead.load(Path(path))
    where = f" and {path} is not readable here" if path else ""
    raise ArtifactMissing(f"model {model_id} has no stored head{where}")


def promoted_head(session: Session, dataset_id: int) -> tuple[str, TrainedHead] | None:
    """The promoted model's version and head, or None (a missing head is logged, not raised:
    the callers fall back to pre-labels or similarity, as they do before any model)."""
    promoted = promoted_model(session, dataset_id)
    if promoted is None:
        return None
    try:
        return promoted.version, load_head(session, promoted.id)
    except ArtifactMissing as exc:
        log.warning("%s", exc)
        return None
