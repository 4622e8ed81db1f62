"""Evaluation reports of model versions, and the learning curve of a dataset built from them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Experiment, ModelEvaluation, ModelStatus, ModelVersion
from include.errors import NotFound


def store(session: Session, model_id: int, eval_version: str, report: dict[str, Any]) -> None:
    """Keep (or replace) a model's report on one eval-set version."""
    stmt = insert(ModelEvaluation).values(
        model_id=model_id, eval_version=eval_version, n=report["n"], macro_f1=report["macro_f1"], report=report
    )
    session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_model_evaluations_model_id",
            set_={"n": stmt.excluded.n, "macro_f1": stmt.excluded.macro_f1, "report": stmt.excluded.report},
        )
    )


def has_report(session: Session, model_id: int, eval_version: str) -> bool:
    return (
        session.scalar(
            select(ModelEvaluation.id).where(
                ModelEvaluation.model_id == model_id, ModelEvaluation.eval_version == eval_version
            )
        )
        is not None
    )


class NoReport(NotFound):
    """The model has not been judged yet."""


def latest_report(session: Session, model_id: int) -> ModelEvaluation:
    """The model's latest evaluation, or :class:`NoReport`."""
    evaluation = latest(session, model_id)
    if evaluation is None:
        raise NoReport(f"model {model_id} has no evaluation report yet")
    return evaluation


def latest(session: Session, model_id: int) -> ModelEvaluation | None:
    return session.scalar(
        select(ModelEvaluation)
        .where(ModelEvaluation.model_id == model_id)
        .order_by(ModelEvaluation.created_at.desc(), ModelEvaluation.id.desc())
        .limit(1)
    )


def predictions_on(session: Session, model_id: int, eval_version: str) -> dict[str, int] | None:
    """A model's recorded predictions (text hash -> label index) on this eval-set version."""
    report = session.scalar(
        select(ModelEvaluation.report).where(
            ModelEvaluation.model_id == model_id, ModelEvaluation.eval_version == eval_version
        )
    )
    return dict(report.get("predictions", {})) if report else None


def learning_curve(session: Session, dataset_id: int) -> list[dict[str, Any]]:
    """Eval-set macro F1 of each model version against the labels it was trained on, oldest first."""
    rows = session.execute(
        select(ModelVersion, Experiment.params, ModelEvaluation)
        .join(ModelEvaluation, ModelEvaluation.model_id == ModelVersion.id)
        .outerjoin(Experiment, Experiment.id == ModelVersion.experiment_id)
        .where(ModelVersion.dataset_id == dataset_id)
        .order_by(ModelVersion.created_at, ModelEvaluation.created_at)
    ).all()
    points: dict[tuple[int, str], dict[str, Any]] = {}
    for model, params, evaluation in rows:
        points[(model.id, evaluation.eval_version)] = {
            "model_id": model.id,
            "version": model.version,
            "status": model.status.value,
            "baseline": model.status == ModelStatus.BASELINE,
            "labels": int((params or {}).get("n_labeled", 0)),
            "macro_f1": evaluation.macro_f1,
            "eval_version": evaluation.eval_version,
            "eval_size": evaluation.n,
        }
    return list(points.values())
