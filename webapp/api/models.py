"""API: the model registry, evaluation reports, and training runs (experiments)."""

from __future__ import annotations

from typing import Any

from include.services import evaluations
from include.services.experiments import get_experiment, progress_message
from include.services.paging import DatasetPageQuery
from include.services.registry import get_model_version, model_page
from webapp.api import api_user, paged, route
from webapp.extensions import db
from webapp.runs import stop_experiment
from webapp.serializers import experiment_json, model_json

TAG = "models"


@route("GET", "/models", tag=TAG, query=DatasetPageQuery, response="Model", listing="models")
def models(query: DatasetPageQuery) -> dict[str, Any]:
    """The model registry, newest first (``?dataset_id=`` to filter)."""
    return paged("models", model_page(db.session(), query), model_json)


@route("GET", "/models/<id:model_id>", tag=TAG, response="Model", errors=(404,))
def model(model_id: int) -> dict[str, Any]:
    """One model version: its status, the gate's decision and why."""
    return model_json(get_model_version(db.session(), model_id))


@route("GET", "/models/<id:model_id>/report", tag=TAG, response="ModelReport", errors=(404,))
def model_report(model_id: int) -> dict[str, Any]:
    """The model's latest evaluation report (confusion, per-label figures, curves, mistakes)."""
    evaluation = evaluations.latest_report(db.session(), model_id)
    report = {k: v for k, v in evaluation.report.items() if k != "predictions"}
    return {"model_id": model_id, "eval_version": evaluation.eval_version, "report": report}


@route("GET", "/experiments/<id:experiment_id>", tag=TAG, response="ExperimentEnvelope", errors=(404,))
def experiment_api(experiment_id: int) -> dict[str, Any]:
    """A training run with its epochs so far (poll it to follow a run live)."""
    run = get_experiment(db.session(), experiment_id)
    return {"experiment": experiment_json(run, progress_message(db.session(), run))}


@route("POST", "/experiments/<id:experiment_id>/stop", tag=TAG, response="Stopped", errors=(404, 409))
def stop_experiment_api(experiment_id: int) -> dict[str, Any]:
    """Stop a running training: the partial experiment is kept and marked stopped (409 if not running)."""
    message = stop_experiment(experiment_id, api_user())
    return {"experiment": experiment_json(get_experiment(db.session(), experiment_id)), "message": message}
